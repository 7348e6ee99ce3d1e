set -e
AUTH="Authorization: Bearer $RELAY_MASTER_KEY"

# Per-day, per-model tokens, requests and cost of one key over the last 30 days
# (or &start=YYYY-MM-DD&end=YYYY-MM-DD; name the key by key=sk-…, its token, or key=master).
curl -s "$RELAY_URL/key/usage?key_alias=team-a" -H "$AUTH"; echo

# Spend in the current budget period, the reset time, and what the key uses right now.
curl -s "$RELAY_URL/key/info?key=$KEY" -H "$AUTH"; echo
