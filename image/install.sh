#!/usr/bin/env bash
# Installs kiosk-agent as a boot-time classroom display on Raspberry Pi OS
# (Bookworm, Trixie; arm64 or armhf) or Debian 12 and newer. Safe to run again:
# a second run changes nothing and says so. Works in a chroot without systemd
# running, which is how the Raspberry Pi image is built.
set -euo pipefail

readonly PREFIX=/opt/kiosk-agent
readonly VENV=$PREFIX/venv
readonly LIBEXEC=$PREFIX/libexec
readonly SHARE=$PREFIX/share
readonly CONF_DIR=/etc/kiosk-agent
readonly CONF_FILE=$CONF_DIR/agent.toml
readonly CONF_SUM=$SHARE/agent.toml.sha256
readonly STATE_DIR=/var/lib/kiosk-agent
readonly CACHE_DIR=/var/cache/kiosk-agent
readonly LOG_DIR=/var/log/kiosk-agent
readonly UNIT_DIR=/etc/systemd/system
readonly USER_UNIT_DIR=/etc/systemd/user
readonly SYSUSERS_FILE=/etc/sysusers.d/kiosk-agent.conf
readonly TMPFILES_FILE=/etc/tmpfiles.d/kiosk-agent.conf
readonly CLI_LINK=/usr/local/bin/kiosk-agent
readonly KIOSK_USER=kiosk
readonly KIOSK_GROUPS=(video render input audio)
readonly UNIT=kiosk-agent.service
readonly TARGET=graphical.target
# systemd, logind's PAM module and dbus are present on every Raspberry Pi OS
# image; they are listed for minimal Debian systems, where cage gets its seat
# from logind and would fail without them.
readonly PACKAGES=(
    systemd libpam-systemd dbus ca-certificates
    cage
    python3-venv python3-gi python3-gi-cairo gir1.2-gtk-3.0 gir1.2-webkit2-4.1
    fonts-noto-core fonts-dejavu-core
)

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR
readonly REPO_DIR=${SCRIPT_DIR%/*}
readonly SYSTEMD_SRC=$REPO_DIR/systemd

changes=0

usage() {
    cat <<EOF
Usage: sudo $0 [options]

Installs kiosk-agent and starts it on tty1 at every boot.

Options:
  --source DIR_OR_WHEEL  install the agent from this source tree or wheel
                         (default: the repository holding this script)
  --server URL           server_url for a new /etc/kiosk-agent/agent.toml
  --no-enable            install everything but do not start it at boot
  --force                reinstall the Python package even at the same version
  --uninstall            remove kiosk-agent; keeps $STATE_DIR (device key)
  --purge                with --uninstall: also remove state, logs and settings
  -h, --help             show this help

After installing, pair the screen:
  sudo -u $KIOSK_USER kiosk-agent pair TOKEN_OR_DISPLAY_URL
EOF
}

say() { printf '==> %s\n' "$*"; }
warn() { printf '==> warning: %s\n' "$*" >&2; }
die() {
    printf '==> error: %s\n' "$*" >&2
    exit 1
}
changed() {
    changes=$((changes + 1))
    say "$*"
}

main() {
    local source=$REPO_DIR server="" enable=1 force=0 uninstall=0 purge=0
    while (($#)); do
        case $1 in
            --source)
                (($# >= 2)) || die "--source needs a directory or wheel"
                source=$2
                shift
                ;;
            --server)
                (($# >= 2)) || die "--server needs a URL"
                server=$2
                shift
                ;;
            --no-enable) enable=0 ;;
            --force) force=1 ;;
            --uninstall) uninstall=1 ;;
            --purge) purge=1 ;;
            -h | --help)
                usage
                return 0
                ;;
            *) die "unknown option '$1' (see --help)" ;;
        esac
        shift
    done
    ((purge == 0 || uninstall == 1)) || die "--purge only goes with --uninstall"
    [[ $(id -u) -eq 0 ]] || die "run me as root, e.g. sudo $0"

    if ((uninstall)); then
        uninstall_all "$purge"
        return 0
    fi

    [[ -z $server ]] || check_url "$server"
    check_os
    install_packages
    install_support_files
    ensure_user
    ensure_dirs
    install_agent "$source" "$force"
    write_config "$server"
    disable_console_blanking
    reload_systemd_if_needed
    if ((enable)); then
        enable_service
    else
        say "not enabling $UNIT (--no-enable); enable it with: systemctl enable $UNIT"
    fi

    if ((changes == 0)); then
        say "nothing to do: kiosk-agent is installed and up to date"
    else
        say "done ($changes changes). Pair with: sudo -u $KIOSK_USER kiosk-agent pair TOKEN"
    fi
}

check_url() {
    [[ $1 =~ ^https?://[^[:space:]\"\\]+$ ]] ||
        die "--server must be an http:// or https:// URL, got '$1'"
}

check_os() {
    [[ -r /etc/os-release ]] || die "no /etc/os-release: not a Debian-like system"
    local id="" like="" version="" codename=""
    # shellcheck disable=SC1091
    id=$(. /etc/os-release && echo "${ID:-}")
    # shellcheck disable=SC1091
    like=$(. /etc/os-release && echo "${ID_LIKE:-}")
    # shellcheck disable=SC1091
    version=$(. /etc/os-release && echo "${VERSION_ID:-}")
    # shellcheck disable=SC1091
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")

    [[ $id == debian || $id == raspbian || " $like " == *" debian "* ]] ||
        die "unsupported OS '$id': needs Raspberry Pi OS or Debian 12 or newer"
    case $codename in
        bullseye | buster | stretch)
            die "Debian/Raspberry Pi OS '$codename' is too old: needs bookworm or newer"
            ;;
    esac
    if [[ $version =~ ^[0-9]+$ ]] && ((version < 12)); then
        die "Debian $version is too old: needs 12 (bookworm) or newer"
    fi
    command -v apt-get >/dev/null || die "apt-get not found"

    local arch
    arch=$(dpkg --print-architecture)
    case $arch in
        arm64 | armhf | amd64) ;;
        *) warn "architecture '$arch' is untested" ;;
    esac
}

install_packages() {
    local missing=() pkg status
    for pkg in "${PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        [[ $status == "install ok installed" ]] || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0

    changed "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${missing[@]}" ||
        die "apt-get install failed"
}

# Copies $1 to $2 with mode $3 unless $2 already holds the same bytes and mode.
put_file() {
    local src=$1 dest=$2 mode=$3
    [[ -f $src ]] || die "missing $src: is the repository complete?"
    if [[ -f $dest ]] && cmp -s "$src" "$dest" &&
        [[ $(stat -c %a "$dest") == "${mode#0}" ]]; then
        return 0
    fi
    install -D -m "$mode" "$src" "$dest"
    changed "installed $dest"
    [[ $dest != *.service && $dest != *.conf ]] || units_changed=1
}

units_changed=0

install_support_files() {
    put_file "$SYSTEMD_SRC/kiosk-agent.service" "$UNIT_DIR/kiosk-agent.service" 0644
    put_file "$SYSTEMD_SRC/kiosk-agent-headless.service" \
        "$UNIT_DIR/kiosk-agent-headless.service" 0644
    put_file "$SYSTEMD_SRC/user/kiosk-agent.service" \
        "$USER_UNIT_DIR/kiosk-agent.service" 0644
    put_file "$SYSTEMD_SRC/kiosk-agent.sysusers" "$SYSUSERS_FILE" 0644
    put_file "$SYSTEMD_SRC/kiosk-agent.tmpfiles" "$TMPFILES_FILE" 0644
    put_file "$SYSTEMD_SRC/kiosk-agent-firstboot" "$LIBEXEC/kiosk-agent-firstboot" 0755
    put_file "$SYSTEMD_SRC/labwc-autostart" "$SHARE/labwc-autostart" 0644

    # RestartSteps= arrived in systemd 254; older versions warn about it.
    local dropin=$UNIT_DIR/kiosk-agent.service.d/restart-backoff.conf
    if (($(systemd_version) >= 254)); then
        put_file "$SYSTEMD_SRC/kiosk-agent.service.d/restart-backoff.conf" "$dropin" 0644
    elif [[ -e $dropin ]]; then
        rm -f "$dropin"
        rmdir --ignore-fail-on-non-empty "${dropin%/*}"
        units_changed=1
        changed "removed $dropin (systemd $(systemd_version) lacks RestartSteps)"
    fi
}

systemd_version() {
    systemctl --version 2>/dev/null | awk 'NR == 1 { print $2 + 0 }' || echo 0
}

systemd_running() {
    [[ -d /run/systemd/system ]]
}

ensure_user() {
    if ! id -u "$KIOSK_USER" >/dev/null 2>&1; then
        if command -v systemd-sysusers >/dev/null; then
            systemd-sysusers "$SYSUSERS_FILE"
        else
            useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
                --shell /usr/sbin/nologin --comment "Classroom display" "$KIOSK_USER"
        fi
        id -u "$KIOSK_USER" >/dev/null 2>&1 || die "could not create user $KIOSK_USER"
        changed "created system user $KIOSK_USER"
    fi

    local group
    for group in "${KIOSK_GROUPS[@]}"; do
        getent group "$group" >/dev/null || continue
        [[ " $(id -nG "$KIOSK_USER") " == *" $group "* ]] && continue
        usermod -a -G "$group" "$KIOSK_USER"
        changed "added $KIOSK_USER to group $group"
    done
}

# Creates directory $1 owned by the kiosk user with mode $2, or repairs it.
ensure_dir() {
    local dir=$1 mode=$2
    if [[ ! -d $dir ]]; then
        install -d -o "$KIOSK_USER" -g "$KIOSK_USER" -m "$mode" "$dir"
        changed "created $dir"
        return 0
    fi
    # A reinstall may give the user a new uid; the device key must stay readable.
    if [[ $(stat -c %U:%G "$dir") != "$KIOSK_USER:$KIOSK_USER" ]]; then
        chown -R "$KIOSK_USER:$KIOSK_USER" "$dir"
        changed "gave $dir to $KIOSK_USER"
    fi
    if [[ $(stat -c %a "$dir") != "${mode#0}" ]]; then
        chmod "$mode" "$dir"
        changed "set $dir to mode $mode"
    fi
}

ensure_dirs() {
    ensure_dir "$STATE_DIR" 0700
    ensure_dir "$CACHE_DIR" 0700
    ensure_dir "$LOG_DIR" 0750
}

install_agent() {
    local source=$1 force=$2 wanted installed

    if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
        # A venv whose Python vanished (an OS upgrade) cannot be repaired.
        rm -rf "$VENV"
        /usr/bin/python3 -m venv --system-site-packages "$VENV"
        changed "created $VENV"
    fi

    wanted=$(source_version "$source")
    installed=$("$VENV/bin/python" -c '
import importlib.metadata as m
try:
    print(m.version("kiosk-agent"))
except m.PackageNotFoundError:
    pass
')
    if ((force == 0)) && [[ -n $installed && $installed == "$wanted" ]]; then
        ensure_cli_link
        return 0
    fi

    local requirement build=""
    if [[ -d $source ]]; then
        # Build from a copy: the source may be read-only or hold a dev venv.
        build=$(mktemp -d)
        tar -C "$source" --exclude=./.git --exclude=./.venv --exclude=./build \
            --exclude=./dist --exclude='*.egg-info' --exclude=__pycache__ \
            --exclude=.pytest_cache --exclude=.ruff_cache --exclude=.mypy_cache \
            -cf - . | tar -C "$build" -xf -
        requirement="${build}[webview]"
    else
        requirement="${source}[webview]"
    fi
    ((force == 0)) || "$VENV/bin/pip" uninstall -y -q kiosk-agent >/dev/null 2>&1 || true
    if ! "$VENV/bin/pip" install -q --disable-pip-version-check --no-cache-dir \
        "$requirement"; then
        [[ -z $build ]] || rm -rf "$build"
        die "pip install of $source failed"
    fi
    [[ -z $build ]] || rm -rf "$build"
    changed "installed kiosk-agent $wanted into $VENV${installed:+ (was $installed)}"
    ensure_cli_link
}

source_version() {
    local source=$1 version=""
    if [[ -d $source ]]; then
        [[ -f $source/pyproject.toml && -f $source/agent/__init__.py ]] ||
            die "$source is not a kiosk-agent source tree"
        version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$source/agent/__init__.py")
    elif [[ -f $source && $source == *.whl ]]; then
        version=$(basename "$source" | cut -d- -f2)
    else
        die "--source must be a source directory or a .whl file: $source"
    fi
    [[ -n $version ]] || die "cannot tell the version of $source"
    echo "$version"
}

ensure_cli_link() {
    [[ $(readlink "$CLI_LINK" 2>/dev/null) == "$VENV/bin/kiosk-agent" ]] && return 0
    ln -sfn "$VENV/bin/kiosk-agent" "$CLI_LINK"
    changed "linked $CLI_LINK"
}

write_config() {
    local server=$1
    if [[ -e $CONF_FILE ]]; then
        if [[ -n $server ]] && ! grep -qxF "server_url = \"$server\"" "$CONF_FILE"; then
            warn "$CONF_FILE exists and is left as it is; set server_url there yourself"
        fi
        return 0
    fi

    install -d -m 0755 "$CONF_DIR"
    config_template "$server" >"$CONF_FILE"
    chmod 0644 "$CONF_FILE"
    install -d -m 0755 "$SHARE"
    sha256sum "$CONF_FILE" >"$CONF_SUM"
    changed "wrote $CONF_FILE"
}

config_template() {
    local server=$1 server_line='# server_url = "https://timetable.example.org"'
    [[ -z $server ]] || server_line="server_url = \"$server\""
    cat <<EOF
# kiosk-agent settings. The installer writes this file only when it is missing,
# so your edits stay. KIOSK_AGENT_<KEY> environment variables override a key
# (for example KIOSK_AGENT_LOG_LEVEL=debug). An unknown key or a bad value
# stops the agent with a message naming it: see journalctl -u kiosk-agent.
# The screen token is not kept here: run "kiosk-agent pair" to store it.

# The school server this screen shows.
$server_line

# Where the device key, token and last good timetable are kept.
# state_dir = "$STATE_DIR"
# token_file = "$STATE_DIR/token"

# "webview" draws on the screen; "headless" writes the page to state_dir.
# renderer = "webview"

# Seconds between checks for a new timetable while push is unavailable.
# poll_min_s = 8
# poll_max_s = 45

# Listen for changes over a WebSocket, so updates appear within seconds.
# push_enabled = true

# log_format = "auto"      # auto, console, json or journal
# log_level = "info"       # debug, info, warning or error

# Software drawing in WebKit; steadier on the Raspberry Pi's GPU driver.
# webkit_disable_compositing = true

# digits = "western"       # western (0-9) or arabic
EOF
}

disable_console_blanking() {
    local cmdline=""
    if [[ -d /boot/firmware ]]; then
        [[ -f /boot/firmware/cmdline.txt ]] && cmdline=/boot/firmware/cmdline.txt
    elif [[ -f /boot/cmdline.txt ]]; then
        cmdline=/boot/cmdline.txt
    fi
    [[ -n $cmdline ]] || return 0
    grep -qE '(^| )consoleblank=0( |$)' "$cmdline" && return 0

    # The kernel reads one line; keep it one line.
    if grep -qE '(^| )consoleblank=' "$cmdline"; then
        sed -i -E '1s/(^| )consoleblank=[^ ]*/\1consoleblank=0/' "$cmdline"
    else
        sed -i -E '1s/[[:space:]]*$/ consoleblank=0/' "$cmdline"
    fi
    changed "turned off console blanking in $cmdline"
}

enable_service() {
    # tty1 belongs to the display; a getty there would race cage for it.
    set_wants getty.target getty@tty1.service absent
    set_wants "$TARGET" "$UNIT" present
    set_default_target
}

# Makes unit $2 wanted (present) or not (absent) by target $1.
set_wants() {
    local target=$1 unit=$2 state=$3 link
    link=$UNIT_DIR/$target.wants/$unit
    if systemd_running; then
        local now
        now=$(systemctl is-enabled "$unit" 2>/dev/null || true)
        if [[ $state == present && $now != enabled ]]; then
            systemctl enable "$unit"
            changed "enabled $unit"
        elif [[ $state == absent && $now == enabled ]]; then
            systemctl disable "$unit"
            changed "disabled $unit"
        fi
        return 0
    fi

    if [[ $state == present && ! -L $link ]]; then
        mkdir -p "${link%/*}"
        ln -s "$(unit_path "$unit")" "$link"
        changed "enabled $unit (link in $target.wants)"
    elif [[ $state == absent && -L $link ]]; then
        rm -f "$link"
        changed "disabled $unit"
    fi
}

unit_path() {
    local unit=$1 dir
    [[ $unit != *@* ]] || unit=${unit%%@*}@.service
    for dir in "$UNIT_DIR" /usr/lib/systemd/system /lib/systemd/system; do
        [[ -e $dir/$unit ]] && echo "$dir/$unit" && return 0
    done
    echo "/lib/systemd/system/$unit"
}

set_default_target() {
    local current
    current=$(readlink "$UNIT_DIR/default.target" 2>/dev/null || true)
    [[ ${current##*/} == multi-user.target ]] || return 0
    ln -sfn "$(unit_path "$TARGET")" "$UNIT_DIR/default.target"
    changed "set the default boot target to $TARGET (was multi-user.target)"
}

reload_systemd_if_needed() {
    ((units_changed)) && systemd_running || return 0
    systemctl daemon-reload
}

uninstall_all() {
    local purge=$1
    say "uninstalling kiosk-agent"

    if systemd_running; then
        systemctl disable --now kiosk-agent.service kiosk-agent-headless.service \
            >/dev/null 2>&1 || true
    fi
    rm -f "$UNIT_DIR/$TARGET.wants/$UNIT" \
        "$UNIT_DIR/multi-user.target.wants/kiosk-agent-headless.service"
    # Give tty1 back to a login prompt.
    if [[ -e $(unit_path getty@.service) ]]; then
        if systemd_running; then
            systemctl enable getty@tty1.service >/dev/null 2>&1 || true
        else
            mkdir -p "$UNIT_DIR/getty.target.wants"
            ln -sfn "$(unit_path getty@.service)" \
                "$UNIT_DIR/getty.target.wants/getty@tty1.service"
        fi
    fi

    rm -f "$UNIT_DIR/kiosk-agent.service" "$UNIT_DIR/kiosk-agent-headless.service" \
        "$USER_UNIT_DIR/kiosk-agent.service" "$SYSUSERS_FILE" "$TMPFILES_FILE" \
        "$CLI_LINK"
    rm -rf "$UNIT_DIR/kiosk-agent.service.d"
    ! systemd_running || systemctl daemon-reload

    if [[ -f $CONF_FILE && -f $CONF_SUM ]] && sha256sum --quiet -c "$CONF_SUM" \
        >/dev/null 2>&1; then
        rm -f "$CONF_FILE"
    elif [[ -f $CONF_FILE ]] && ((purge == 0)); then
        say "kept $CONF_FILE: it has local edits"
    fi
    rm -rf "$PREFIX"

    if id -u "$KIOSK_USER" >/dev/null 2>&1; then
        userdel "$KIOSK_USER" || warn "could not remove user $KIOSK_USER"
        ! getent group "$KIOSK_USER" >/dev/null || groupdel "$KIOSK_USER" || true
    fi

    if ((purge)); then
        rm -rf "$STATE_DIR" "$CACHE_DIR" "$LOG_DIR" "$CONF_DIR"
        say "removed $STATE_DIR, $CACHE_DIR, $LOG_DIR and $CONF_DIR"
    else
        rmdir --ignore-fail-on-non-empty "$CONF_DIR" 2>/dev/null || true
        say "kept $STATE_DIR: it holds the device key the server knows this screen by"
        say "remove it too with: $0 --uninstall --purge"
    fi
    say "kiosk-agent removed; the Debian packages it installed are left in place"
}

main "$@"
