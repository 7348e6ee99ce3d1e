set -e
AUTH="Authorization: Bearer $RELAY_MASTER_KEY"

# Create a key: Claude 3 Haiku only, $10 every 30 days, 60 requests a minute, valid 90 days.
KEY=$(curl -s "$RELAY_URL/key/generate" -H "$AUTH" -H 'Content-Type: application/json' \
  -d '{"key_alias": "team-a", "models": ["anthropic.claude-3-haiku-20240307-v1:0"],
       "max_budget": 10, "budget_duration": "30d", "rpm_limit": 60, "duration": "90d",
       "metadata": {"owner": "team-a@example.com"}}' \
  | node -p 'JSON.parse(require("fs").readFileSync(0)).key')

# Inspect, list, change.
curl -s "$RELAY_URL/key/info?key=$KEY" -H "$AUTH"; echo
curl -s "$RELAY_URL/key/list?key_alias=team-a" -H "$AUTH"; echo
curl -s "$RELAY_URL/key/update" -H "$AUTH" -H 'Content-Type: application/json' \
  -d "{\"key\": \"$KEY\", \"allowed_operations\": [\"Converse\", \"ConverseStream\"]}"; echo

# Take it away for a while, then give it back.
curl -s "$RELAY_URL/key/block" -H "$AUTH" -H 'Content-Type: application/json' -d "{\"key\": \"$KEY\"}"; echo
curl -s "$RELAY_URL/key/unblock" -H "$AUTH" -H 'Content-Type: application/json' -d "{\"key\": \"$KEY\"}"; echo

# Rotate: a new secret with the same policy and spend; the old one stops working at once.
KEY=$(curl -s "$RELAY_URL/key/regenerate" -H "$AUTH" -H 'Content-Type: application/json' \
  -d "{\"key\": \"$KEY\"}" | node -p 'JSON.parse(require("fs").readFileSync(0)).key')

# Delete by alias (or {"keys": [...]}).
curl -s "$RELAY_URL/key/delete" -H "$AUTH" -H 'Content-Type: application/json' -d '{"key_aliases": ["team-a"]}'; echo
