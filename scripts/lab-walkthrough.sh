#!/usr/bin/env bash
# Walks the lab's Steps 1-5 against a running demo, with curl as the browser and the real
# latchkey-authenticator binary as the phone. Start the demo first, from the repository, with
# its output in $WORK/demo.log and the proxy trusted (so Step 5 can come "from London"):
#
#   WORK=/tmp/lab; mkdir -p $WORK
#   cargo build --release -p latchkey -p latchkey-authenticator
#   LATCHKEY_DATA_DIR=$WORK/data LATCHKEY_TRUSTED_PROXIES=127.0.0.1/32 \
#     ./target/release/latchkey demo > $WORK/demo.log 2>&1 &
#   WORK=$WORK scripts/lab-walkthrough.sh
#
# Needs curl and python3. The authenticator's home is $WORK/phone.
set -euo pipefail
WORK=${WORK:-/tmp/lab}
B=http://localhost:8080
BIN="$(cd "$(dirname "$0")/.." && pwd)/target/release"
AUTH="$BIN/latchkey-authenticator --home $WORK/phone"
PASS=$(grep 'Bobby Smith' $WORK/demo.log | grep -v 'sign in' | awk '{print $NF}')
csrf() { grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//;s/"$//'; }
unesc() { python3 -c 'import html,sys; print(html.unescape(sys.stdin.read()).strip())'; }

echo "== Step 1: administrator sets Authenticator: enabled, all users, mode Any"
LATCHKEY_DATA_DIR=$WORK/data $BIN/latchkey admin policy set authenticator --state enabled --target all --mode any | head -3

echo "== Step 2: Bobby signs in to Security info with his pass and adds the authenticator"
J=$WORK/bobby.jar; rm -f $J
curl -s -c $J -b $J -L "$B/mysecurityinfo" > $WORK/p.html
T=$(csrf < $WORK/p.html)
curl -s -c $J -b $J -L -d "csrf=$T&username=bobby@latchkey.test" "$B/login/username" > $WORK/p.html
T=$(csrf < $WORK/p.html)
curl -s -c $J -b $J -L -d "csrf=$T&method=pass&secret=$PASS" "$B/login/credential" > $WORK/p.html
grep -o '<h1>[^<]*</h1>' $WORK/p.html
T=$(csrf < $WORK/p.html)
curl -s -c $J -b $J -d "csrf=$T" "$B/mysecurityinfo/authenticator" > $WORK/add.html
grep -o 'data:image/png;base64,[^"]*' $WORK/add.html | sed 's/data:image\/png;base64,//' | unesc | base64 -d > $WORK/qr.png
NEXT=$(grep -o 'data-next-url="[^"]*"' $WORK/add.html | sed 's/data-next-url="//;s/"$//' | unesc)
file $WORK/qr.png
# The person scans the QR picture, then reads the test number off the page and types it.
( sleep 1.5; curl -s -c $J -b $J "$B$NEXT" | grep -o 'id="number">[0-9]*' | grep -o '[0-9]*$' ) \
  | $AUTH add --qr-image $WORK/qr.png --name "Bobby's phone"
curl -s -c $J -b $J "$B$NEXT" | grep -o '<h1>[^<]*</h1>'
echo "-- Step 2 #5: enable phone sign-in in the app (PIN 246810, twice)"
printf '246810\n246810\n' | $AUTH enable-phone-sign-in
echo
$AUTH accounts
curl -s -c $J -b $J "$B/mysecurityinfo" | grep -o 'Authenticator app — [A-Za-z ]*'

run_sign_in() {   # $1 = label, extra curl args after
  local label=$1; shift
  local J2=$WORK/browser.jar; rm -f $J2
  rm -f $WORK/in; mkfifo $WORK/in
  # Started here and later stopped by its own id, so no other process is ever touched.
  $AUTH listen < $WORK/in > $WORK/listen.out 2>&1 &
  local LISTEN_PID=$!
  exec 3>$WORK/in
  sleep 0.5
  curl -s -c $J2 -b $J2 -L "$@" "$B/myapps" > $WORK/p.html
  local T=$(csrf < $WORK/p.html)
  curl -s -c $J2 -b $J2 -L "$@" -d "csrf=$T&username=bobby@latchkey.test" "$B/login/username" > $WORK/number.html
  grep -o '<h1>[^<]*</h1>' $WORK/number.html
  local N=$(grep -o 'id="number">[0-9]*' $WORK/number.html | grep -o '[0-9]*$')
  echo "The page shows the number $N"
  sleep 0.5
  printf 'a\n%s\n246810\n' "$N" >&3
  sleep 1.5
  exec 3>&-
  echo "-- what the authenticator showed ($label):"
  sed 's/^/   | /' $WORK/listen.out
  kill "$LISTEN_PID" 2>/dev/null || true
  wait "$LISTEN_PID" 2>/dev/null || true
  curl -s -c $J2 -b $J2 -L "$@" "$B/login" | grep -o 'Signed in as <strong>[^<]*</strong>'
}

echo "== Step 3: a fresh browser opens My Apps and types the UPN"
run_sign_in "Step 3"

echo "== Step 4: administrator enables number matching, application name and location"
LATCHKEY_DATA_DIR=$WORK/data $BIN/latchkey admin policy set authenticator --number-matching enabled --show-app-name enabled --show-location enabled | tail -6

echo "== Step 5: sign in again from an address in London (through the trusted proxy)"
run_sign_in "Step 5" -H "X-Forwarded-For: 81.2.69.160"

echo "== The sign-in log"
LATCHKEY_DATA_DIR=$WORK/data $BIN/latchkey admin logs signins --since 1h | head -8
