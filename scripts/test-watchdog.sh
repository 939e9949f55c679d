#!/usr/bin/env bash
# Turns a hung test binary into a failed run with a reason, instead of a CI job
# that runs into its time limit saying nothing.
#
#   scripts/test-watchdog.sh TARGET_DIR LIMIT_SECONDS
#
# Every 15 s it looks at the test binaries running from TARGET_DIR/debug/deps;
# one that has run for longer than LIMIT_SECONDS gets every thread's stack
# printed to stderr (with gdb when it is installed, else each thread's name and
# kernel wait channel) and is then killed, so `cargo test` fails on it.
# Runs until killed; scripts/test.sh starts and stops it.
set -uo pipefail

deps="$(cd "$1" && pwd)/debug/deps/"
limit="$2"

report() {
  local pid=$1 age=$2
  {
    printf '\ntest-watchdog: %s has run for %ss (limit %ss); its threads:\n' \
      "$(tr '\0' ' ' <"/proc/$pid/cmdline")" "$age" "$limit"
    if command -v gdb >/dev/null; then
      gdb -p "$pid" -batch -ex 'thread apply all bt' 2>&1 | grep -v '^\[New LWP'
    else
      for task in /proc/"$pid"/task/*; do
        printf '  %s %s waiting in %s\n' "${task##*/}" "$(cat "$task/comm")" "$(cat "$task/wchan")"
      done
    fi
    printf 'test-watchdog: killing %s\n' "$pid"
  } >&2
  kill -9 "$pid" 2>/dev/null
}

while sleep 15; do
  for pid in $(pgrep -f "^$deps" || true); do
    age=$(ps -o etimes= -p "$pid" 2>/dev/null | tr -d ' ')
    if [ -n "$age" ] && [ "$age" -gt "$limit" ]; then
      report "$pid" "$age"
    fi
  done
done
