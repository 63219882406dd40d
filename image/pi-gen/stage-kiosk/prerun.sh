#!/bin/bash -e
# Starts from the Lite root file system that stage2 built.
if [ ! -d "${ROOTFS_DIR}" ]; then
	copy_previous
fi
