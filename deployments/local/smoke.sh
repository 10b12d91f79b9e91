#!/usr/bin/env bash
# make smoke: make up, the README's kcat recipe as written, a check of its outcome, make down.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
trap 'bash deployments/local/down.sh' EXIT
bash deployments/local/up.sh
# The recipe block follows the kcat-recipe marker in README.md.
recipe=$(awk '/<!-- kcat-recipe/{f=1;next} f&&/^```sh/{g=1;next} g&&/^```/{exit} g' README.md)
echo "--- the README recipe"
echo "$recipe"
bash -euo pipefail -c "$recipe"
rm -f ev.avro
for _ in $(seq 1 100); do
  n=$(curl -fsS 'localhost:8083/notifications?accountId=acc-kcat-1' 2>/dev/null | grep -o '"kind":"welcome"' | wc -l || true)
  [ "$n" -ge 1 ] && break
  sleep 0.2
done
curl -fsS 'localhost:8082/users?accountId=acc-kcat-1' >/dev/null
n=$(curl -fsS 'localhost:8083/notifications?accountId=acc-kcat-1' | grep -o '"kind":"welcome"' | wc -l)
if [ "$n" != 1 ]; then
  echo "smoke: $n welcome emails for acc-kcat-1, want 1" >&2
  exit 1
fi
echo "smoke: make up + README recipe + make down: one user, one welcome email"
