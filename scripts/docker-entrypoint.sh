#!/usr/bin/env bash
# The app container's two processes: the automation API (andini serve) and the chat UI (andini ui).
# When either one exits, the other is stopped and the container exits with the first one's status,
# so Docker's restart policy and health checks see a failure instead of a half-working container.
set -uo pipefail

andini serve --host 0.0.0.0 --port "${ANDINI_API_PORT:-8001}" &
api=$!
andini ui --host 0.0.0.0 --port "${ANDINI_UI_PORT:-8501}" &
ui=$!
trap 'kill -TERM "$api" "$ui" 2>/dev/null' TERM INT

wait -n "$api" "$ui"
status=$?
kill -TERM "$api" "$ui" 2>/dev/null
wait
exit "$status"
