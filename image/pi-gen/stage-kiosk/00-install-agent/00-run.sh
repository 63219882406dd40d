#!/bin/bash -e
# Copies the kiosk-agent sources into the image and runs the installer there.
#
# Sources come from $KIOSK_AGENT_SOURCE when the pi-gen config exports it, else
# from files/kiosk-agent beside this script (image/pi-gen/prepare.sh puts them
# there). $KIOSK_AGENT_SERVER, when exported, becomes the image's server_url.

src="${KIOSK_AGENT_SOURCE:-files/kiosk-agent}"
if [ ! -f "${src}/image/install.sh" ]; then
	echo "kiosk-agent sources not found at ${src}: run image/pi-gen/prepare.sh" >&2
	exit 1
fi

dest="${ROOTFS_DIR}/usr/src/kiosk-agent"
rm -rf "${dest}"
mkdir -p "${dest}"
tar -C "${src}" --exclude=./.git --exclude=./.venv --exclude=__pycache__ \
	--exclude='*.egg-info' --exclude=./build --exclude=./dist -cf - . |
	tar -C "${dest}" -xf -

server_arg=""
if [ -n "${KIOSK_AGENT_SERVER:-}" ]; then
	server_arg="--server ${KIOSK_AGENT_SERVER}"
fi

on_chroot <<CHROOT
set -e
/usr/src/kiosk-agent/image/install.sh ${server_arg}
rm -rf /usr/src/kiosk-agent
CHROOT
