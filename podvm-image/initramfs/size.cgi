#!/bin/sh
# TEST ONLY. POST /cgi-bin/size of the test pod VM's pod-network test server (see /init): reads the
# request body (CONTENT_LENGTH bytes, which busybox httpd hands a CGI on its standard input) and
# answers how many bytes arrived, so a test can send a large body through the pod's VXLAN tunnel
# and see it whole in the VM.
printf 'Content-Type: text/plain\r\nCache-Control: no-store\r\n\r\n'
case ${CONTENT_LENGTH:-} in
  '' | *[!0-9]*) echo 0 ;;
  *) head -c "$CONTENT_LENGTH" | wc -c ;;
esac
