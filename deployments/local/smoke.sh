#!/usr/bin/env bash
# make smoke: make up, the README's kcat recipe, a check of its outcome, make down.
#
# The databases of make up outlive it (PostgreSQL keeps its data outside the clone), so a row left
# by an earlier run would satisfy a check of a fixed account. The recipe therefore runs with its
# identifiers (account ID, ce_id, username, email) made unique to this run; everything else in it
# is executed as written.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
trap 'bash deployments/local/down.sh' EXIT
bash deployments/local/up.sh
run="$(date +%s)$$"
acc="acc-kcat-$run"
# The recipe block follows the kcat-recipe marker in README.md.
recipe=$(awk '/<!-- kcat-recipe/{f=1;next} f&&/^```sh/{g=1;next} g&&/^```/{exit} g' README.md)
for id in acc-kcat-1 kcat-demo-1 jane; do
  if ! grep -q -- "$id" <<<"$recipe"; then
    echo "smoke: the README recipe no longer mentions $id; update deployments/local/smoke.sh" >&2
    exit 1
  fi
done
recipe=$(sed -e "s/acc-kcat-1/$acc/g" -e "s/kcat-demo-1/kcat-demo-$run/g" -e "s/jane/jane$run/g" <<<"$recipe")
echo "--- the README recipe (identifiers unique to this run)"
echo "$recipe"
bash -euo pipefail -c "$recipe"
rm -f ev.avro
sent() { curl -fsS "localhost:8083/notifications?accountId=$acc" 2>/dev/null | grep -o '"kind":"welcome"[^}]*"status":"sent"' | wc -l || true; }
for _ in $(seq 1 150); do
  n=$(sent)
  [ "$n" -ge 1 ] && break
  sleep 0.2
done
curl -fsS "localhost:8082/users?accountId=$acc" >/dev/null
n=$(sent)
all=$(curl -fsS "localhost:8083/notifications?accountId=$acc" | grep -o '"kind":"welcome"' | wc -l)
if [ "$n" != 1 ] || [ "$all" != 1 ]; then
  echo "smoke: $all welcome emails for $acc ($n sent), want exactly 1, sent" >&2
  exit 1
fi
echo "smoke: make up + README recipe + make down: one user, one welcome email sent, for $acc (new in this run)"
