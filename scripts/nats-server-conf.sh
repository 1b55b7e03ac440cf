#!/usr/bin/env bash
# Renders docs/nats-server.conf (a least-privilege nats-server configuration
# for an OSAPI fleet) to standard output.
#
#   scripts/nats-server-conf.sh \
#     --ns osapi --listen 0.0.0.0 --port 4222 --store-dir /var/lib/nats \
#     --cert /etc/nats/server.pem --key /etc/nats/server-key.pem --ca /etc/nats/ca.pem \
#     --controller 'user: "osapi-controller", password: "..."' \
#     --agent 'web-01=user: "agent-web-01", password: "..."' \
#     --agent 'db-01=nkey: "UABC..."' > nats-server.conf
#
# --controller and --agent take the credential lines of a nats-server user
# entry; an agent's hostname is sanitised as agents do (non [A-Za-z0-9_] → _).
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
template="$here/docs/nats-server.conf"
ns=osapi listen=0.0.0.0 port=4222 store_dir=/var/lib/nats cert= key= ca= controller=
agents=()
while [ $# -gt 0 ]; do
  case "$1" in
    --template) template="$2"; shift 2 ;;
    --ns) ns="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --listen) listen="$2"; shift 2 ;;
    --store-dir) store_dir="$2"; shift 2 ;;
    --cert) cert="$2"; shift 2 ;;
    --key) key="$2"; shift 2 ;;
    --ca) ca="$2"; shift 2 ;;
    --controller) controller="$2"; shift 2 ;;
    --agent) agents+=("$2"); shift 2 ;;
    *) echo "unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
done
for v in cert key ca controller; do
  if [ -z "${!v}" ]; then echo "--$v is required" >&2; exit 2; fi
done

python3 - "$template" "$ns" "$listen" "$port" "$store_dir" "$cert" "$key" "$ca" "$controller" "${agents[@]}" <<'PY'
import re, sys
template, ns, listen, port, store, cert, key, ca, controller, *agents = sys.argv[1:]
text = open(template).read()
# The template's header documents the placeholders: leave it out, so that
# they are not filled in inside a comment (credentials included).
lines = text.splitlines(keepends=True)
while lines and lines[0].startswith("#"):
    lines.pop(0)
text = ("# Rendered from docs/nats-server.conf by scripts/nats-server-conf.sh;\n"
        "# see the template for what each user may do.\n") + "".join(lines)
start = text.index("    # BEGIN AGENT\n")
end = text.index("    # END AGENT\n") + len("    # END AGENT\n")
block = text[start:end]
rendered = ""
for spec in agents:
    host, _, auth = spec.partition("=")
    if not host or not auth:
        sys.exit(f"--agent {spec!r}: expected HOSTNAME=CREDENTIALS")
    sanitized = re.sub(r"[^A-Za-z0-9_]", "_", host)
    rendered += block.replace("{{HOST}}", sanitized).replace("{{AGENT_AUTH}}", auth)
text = text[:start] + rendered + text[end:]
for k, v in {"NS": ns, "LISTEN": listen, "PORT": port, "STORE_DIR": store, "CERT_FILE": cert,
             "KEY_FILE": key, "CA_FILE": ca, "CONTROLLER_AUTH": controller}.items():
    text = text.replace("{{" + k + "}}", v)
sys.stdout.write(text)
PY
