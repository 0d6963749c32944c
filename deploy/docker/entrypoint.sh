#!/bin/sh
# r1r image entrypoint: the first argument names the process, the rest are its flags.
#   orchestrator | learner | actor | reward | judge | serve  -> /opt/r1r/bin/r1r-<name> "$@"
#   r1r-<name>                                               -> the same
#   r1r | cli                                                -> the CLI (r1r <verb> ...)
#   help                                                     -> this text
#   anything else                                            -> exec'd as given (e.g. sh)
# For a service it records the gRPC port the HEALTHCHECK probes in /tmp/r1r-health-port.
set -eu
BIN=${R1R_BIN_DIR:-/opt/r1r/bin}

usage() {
  cat <<'TXT'
usage: <image> SERVICE [flags]     SERVICE: orchestrator learner actor reward judge serve
       <image> r1r VERB [flags]    the CLI: submit list status watch cancel health demo compare eval data
       <image> SERVICE --help      the service's flags
TXT
}

default_port() {
  case "$1" in
    orchestrator) echo 50051 ;; learner) echo 50052 ;; actor) echo 50053 ;;
    reward) echo 50054 ;; judge) echo 50055 ;; serve) echo 50056 ;;
  esac
}

[ $# -gt 0 ] || { usage; exit 2; }
name=$1
case "$name" in r1r-*) name=${name#r1r-} ;; esac

case "$name" in
  orchestrator|learner|actor|reward|judge|serve)
    shift
    port=$(default_port "$name")
    prev=""
    for a in "$@"; do
      case "$a" in
        --listen=*) port=${a##*:} ;;
        *) [ "$prev" = "--listen" ] && port=${a##*:} ;;
      esac
      prev=$a
    done
    echo "$port" > /tmp/r1r-health-port 2>/dev/null || true
    exec "$BIN/r1r-$name" "$@"
    ;;
  r1r|cli)
    shift
    exec "$BIN/r1r" "$@"
    ;;
  help|--help|-h)
    usage
    exit 0
    ;;
  *)
    exec "$@"
    ;;
esac
