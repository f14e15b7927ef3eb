#!/usr/bin/env bash
# The app container's two processes: the automation API (andini serve) and the chat UI (andini ui).
# When either one exits, the other is stopped and the container exits with the first one's status,
# so Docker's restart policy and health checks see a failure instead of a half-working container.
set -uo pipefail

# Both bind ANDINI_API_HOST: 0.0.0.0 in the image, 127.0.0.1 on the host network (docker-compose.ci.yml).
host=${ANDINI_API_HOST:-0.0.0.0}
andini serve --host "$host" --port "${ANDINI_API_PORT:-8001}" &
api=$!
andini ui --host "$host" --port "${ANDINI_UI_PORT:-8501}" &
ui=$!
trap 'kill -TERM "$api" "$ui" 2>/dev/null' TERM INT

wait -n "$api" "$ui"
status=$?
kill -TERM "$api" "$ui" 2>/dev/null
wait
exit "$status"
