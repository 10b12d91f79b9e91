#!/usr/bin/env bash
# Throwaway TLS material for the secured local broker (kafka.sh with KAFKA_SECURE=1): a CA, a
# broker certificate for 127.0.0.1 and localhost, and client certificates for mutual TLS.
# Everything is PEM (Kafka reads PEM key stores; Go clients read PEM) and made with openssl.
# Nothing here is fit for anything but a developer machine or CI.
#
# usage: certs.sh DIR [CLIENT_CN...]
#   Writes into DIR (kept if present, so a restarted broker keeps its CA):
#     ca.pem, ca.key                  the CA (clients trust ca.pem: KAFKA_TLS_CA_FILE)
#     broker.pem, broker.key          the broker's certificate (CN=broker) and key
#     broker-keystore.pem             key and certificate chain, Kafka's ssl.keystore.location
#     client-<CN>.pem, client-<CN>.key   a client certificate per CLIENT_CN (default: admin);
#                                     with the broker's principal mapping it is User:<CN>
set -euo pipefail
dir=${1:?usage: certs.sh DIR [CLIENT_CN...]}
shift
clients=("$@")
[ ${#clients[@]} -gt 0 ] || clients=(admin)
command -v openssl >/dev/null 2>&1 || { echo "certs.sh: openssl not found (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$dir"
chmod 700 "$dir"
cd "$dir"
umask 077
days=825

if [ ! -s ca.pem ] || [ ! -s ca.key ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" \
    -keyout ca.key -out ca.pem -subj "/CN=choreo local CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  rm -f broker.pem client-*.pem # issued by a CA that is gone
fi

# issue NAME CN EXT: a key (PKCS#8, unencrypted) and a certificate signed by the CA.
issue() {
  local name=$1 cn=$2 ext=$3
  [ -s "$name.pem" ] && [ -s "$name.key" ] && return 0
  openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$name.key" -out "$name.csr" -subj "/CN=$cn" 2>/dev/null
  printf '%s\n' "$ext" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days "$days" -sha256 \
    -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

issue broker broker "$(printf '%s\n' 'basicConstraints=CA:FALSE' \
  'keyUsage=critical,digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth,clientAuth' \
  'subjectAltName=IP:127.0.0.1,DNS:localhost')"
cat broker.key broker.pem ca.pem >broker-keystore.pem
for cn in "${clients[@]}"; do
  issue "client-$cn" "$cn" "$(printf '%s\n' 'basicConstraints=CA:FALSE' \
    'keyUsage=critical,digitalSignature,keyEncipherment' 'extendedKeyUsage=clientAuth')"
done
chmod 644 ca.pem
