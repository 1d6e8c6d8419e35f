#!/bin/sh
# TEST ONLY. /cgi-bin/reach?<ip>:<port> of the test pod VM's pod-network test server (see /init):
# busybox httpd runs it inside the pod network namespace, so the TCP connection it opens starts in
# the pod VM and leaves through the pod's VXLAN tunnel (VM -> node traffic). It sends nothing,
# prints what the peer sent until the peer closes (at most 10 s), and answers 200 with those bytes;
# 400 for a malformed target; 502 when nothing came back and the connection failed.
# <ip> is an IPv4 address, or an IPv6 one with or without brackets: reach?[fd00::1]:9000.
reply() {
  printf 'Status: %s\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\n\r\n' "$1"
  shift
  [ $# -eq 0 ] || printf '%s\n' "$*"
  exit 0
}

target=$QUERY_STRING
port=${target##*:}
host=${target%:*}
host=${host#\[}
host=${host%\]}
case $port in
  '' | *[!0-9]*) reply "400 Bad Request" "reach: expected /cgi-bin/reach?<ip>:<port>, got \"$target\"" ;;
esac
case $host in
  '' | *[!0-9a-fA-F.:]*) reply "400 Bad Request" "reach: \"$host\" is not an IP address" ;;
esac
if [ ${#port} -gt 5 ] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
  reply "400 Bad Request" "reach: port $port out of range"
fi

out=/tmp/reach.$$
timeout 10 nc -w 5 "$host" "$port" </dev/null >"$out" 2>"$out.err"
status=$?
if [ -s "$out" ] || [ $status -eq 0 ]; then
  printf 'Status: 200 OK\r\nContent-Type: application/octet-stream\r\nCache-Control: no-store\r\n\r\n'
  cat "$out"
  rm -f "$out" "$out.err"
  exit 0
fi
why=$(cat "$out.err")
rm -f "$out" "$out.err"
reply "502 Bad Gateway" "reach: nothing from $host port $port (nc status $status): $why"
