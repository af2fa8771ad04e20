# Written by picd: runs Dovecot and Postfix in the mail container, and ends when either ends,
# so the engine restarts the container (its restart policy) with both.
set -u
# Postfix's data folder is a fresh tmpfs, root's: Postfix writes it as its own user.
chown postfix:postfix /var/lib/postfix
trap 'kill -TERM $(jobs -p) 2>/dev/null; wait; exit 0' TERM INT
/usr/sbin/dovecot -F -c /etc/picd-mail/dovecot.conf &
/usr/sbin/postfix -c /etc/picd-mail start-fg &
wait -n
echo "picd mail: a server ended; stopping the container" >&2
kill -TERM $(jobs -p) 2>/dev/null
wait
exit 1
