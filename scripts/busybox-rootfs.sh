#!/bin/sh
# Writes a busybox root filesystem as a tar to stdout, from the host's
# busybox-static (Debian package busybox-static): /bin/busybox, one symlink
# per applet, and the few files images usually carry (passwd, group).
set -eu
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || { echo "busybox-rootfs: $BUSYBOX not found (apt-get install busybox-static)" >&2; exit 1; }
if ! "$BUSYBOX" ls --help >/dev/null 2>&1 && ! ldd "$BUSYBOX" 2>&1 | grep -q "not a dynamic"; then
  echo "busybox-rootfs: $BUSYBOX is not static" >&2
  exit 1
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp" "$dir/root" "$dir/home" "$dir/var/spool/mail" "$dir/var/www" "$dir/usr/bin" "$dir/usr/sbin" "$dir/sbin" "$dir/proc" "$dir/sys" "$dir/dev"
chmod 1777 "$dir/tmp"
chmod 700 "$dir/root"
cp "$BUSYBOX" "$dir/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ "$applet" = busybox ] && continue
  ln -s busybox "$dir/bin/$applet"
done
cat > "$dir/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
P
cat > "$dir/etc/group" <<'G'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:8:
www-data:x:33:
operator:x:37:
users:x:100:
nogroup:x:65534:
G
tar --numeric-owner --owner=0 --group=0 -C "$dir" -cf - .
