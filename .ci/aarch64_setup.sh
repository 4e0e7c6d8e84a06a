#!/usr/bin/env bash
# Builds an emulated Raspberry Pi for tests/test_aarch64.py: Raspberry Pi OS bookworm's Python (Debian
# bookworm's arm64 python3.11, extracted from its .deb files), the aarch64 wheels of setup.py's RUNTIME pins
# installed as a Pi user would (pip install ai-edge-litert==... numpy pillow), and a launcher that runs it
# under qemu-user-static as a Pi 5 (cortex-a76) or a Pi 4 (cortex-a72).
#
# Usage: .ci/aarch64_setup.sh [CACHE]   (default $KERAS_VIT_AARCH64, else ~/.cache/keras_vit/aarch64)
# Prints CACHE on its last line. Then: CACHE/run cortex-a76 -c 'import ai_edge_litert'.
# Exit 77: qemu-aarch64-static is absent and cannot be installed here (the test skips, naming the reason).
# Idempotent: a rerun asks apt nothing, reinstalls the wheels only when the RUNTIME pins changed, and rewrites
# the launcher and cpuinfo files. Measured 2026-12-01 on the 2-core CI machine: first run ~55 s (qemu-user-static
# 13 s, 34 arm64 packages of 14 MB, 37 MB of wheels; needs root for apt), rerun 0.5-0.8 s.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${1:-${KERAS_VIT_AARCH64:-${XDG_CACHE_HOME:-$HOME/.cache}/keras_vit/aarch64}}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$CACHE"
say() { echo "aarch64_setup: $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }

# 1. qemu-user-static (Debian's); the only step whose failure makes the test skip.
if ! command -v qemu-aarch64-static >/dev/null; then
  say "installing qemu-user-static"
  if ! { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq qemu-user-static; } >&2 \
     || ! command -v qemu-aarch64-static >/dev/null; then
    say "qemu-aarch64-static is not installed and apt-get cannot install qemu-user-static here (needs root and Debian/Ubuntu)"
    exit 77
  fi
fi

# 2. Debian bookworm's arm64 python3.11 and the shared libraries it and the wheels load. Built once: apt's
#    package cache takes seconds a query on a busy machine, so a rerun asks apt nothing (delete
#    CACHE/sysroot to pick up Debian's updates).
if [ ! -x "$CACHE/sysroot/usr/bin/python3.11" ]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    say "adding the arm64 architecture to apt"
    as_root dpkg --add-architecture arm64
    as_root apt-get update -qq >&2
  elif ! apt-cache show python3.11:arm64 >/dev/null 2>&1; then
    as_root apt-get update -qq >&2
  fi
  # python3.11's dependency closure, arm64 only (dpkg, tar and install-info are never run in the sysroot).
  PACKAGES=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
    --no-enhances python3.11:arm64 libstdc++6:arm64 2>/dev/null | grep -v '^ ' | grep ':arm64$' \
    | grep -v -e '^dpkg:' -e '^tar:' -e '^install-info:' | sort -u)
  say "fetching $(echo $PACKAGES | wc -w) arm64 packages"
  rm -rf "$CACHE/debs" "$CACHE/sysroot.partial" && mkdir -p "$CACHE/debs" "$CACHE/sysroot.partial"
  # apt-get download writes into the working directory; _apt cannot write to root's folders, so unsandboxed.
  (cd "$CACHE/debs" && apt-get download -qq -o APT::Sandbox::User=root $PACKAGES >&2)
  for deb in "$CACHE"/debs/*.deb; do dpkg-deb -x "$deb" "$CACHE/sysroot.partial"; done
  mv "$CACHE/sysroot.partial" "$CACHE/sysroot" && rm -rf "$CACHE/debs"
  rm -f "$CACHE/site.key"  # a new interpreter: reinstall the wheels
fi

# 3. cpuinfo of the emulated Pi cores: LiteRT's CPU detection crashes (SIGSEGV) on the host's x86 cpuinfo,
#    which qemu-user passes through. One entry per host CPU, as the kernel would list them.
CPUS=$(getconf _NPROCESSORS_CONF)
write_cpuinfo() {  # name, Features, variant, part, revision (from the Pi 5's and Pi 4's /proc/cpuinfo)
  local i
  for ((i = 0; i < CPUS; i++)); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\n' "$i" "$2"
    printf 'CPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' "$3" "$4" "$5"
  done >"$CACHE/cpuinfo-$1"
}
write_cpuinfo cortex-a76 "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" 0x4 0xd0b 1
write_cpuinfo cortex-a72 "fp asimd evtstrm crc32 cpuid" 0x0 0xd08 3
# qemu's default CPU (SVE, SME, i8mm...) behind the Pi 5's cpuinfo: XNNPACK's int8 is wrong there, which the
# self-check's test uses as a known disagreement.
cp "$CACHE/cpuinfo-cortex-a76" "$CACHE/cpuinfo-max"

# 4. The launcher: CACHE/run CPU ARGS... runs the emulated python3.11 with the cpuinfo of CPU bind-mounted over
#    /proc/cpuinfo in a private mount namespace (as root, else in a user namespace). PYTHONPATH is kept.
cat >"$CACHE/run" <<EOF
#!/bin/sh
# Usage: $CACHE/run cortex-a76|cortex-a72|max PYTHON-ARGS...
cpu=\$1; shift
[ -f "$CACHE/cpuinfo-\$cpu" ] || { echo "run: no cpuinfo for \$cpu (cortex-a76, cortex-a72 or max)" >&2; exit 2; }
if [ "\$(id -u)" = 0 ]; then ns="unshare -m"; else ns="unshare -r -m"; fi
export PYTHONPATH="\${PYTHONPATH:+\$PYTHONPATH:}$CACHE/site"
exec \$ns sh -c 'mount --bind "\$0" /proc/cpuinfo && exec "\$@"' "$CACHE/cpuinfo-\$cpu" \\
  qemu-aarch64-static -L "$CACHE/sysroot" -cpu "\$cpu" "$CACHE/sysroot/usr/bin/python3.11" "\$@"
EOF
chmod +x "$CACHE/run"

# 5. The aarch64 wheels of setup.py's RUNTIME pins, resolved with their dependencies as pip on a Pi does.
RUNTIME=$("$PYTHON" - "$REPO/setup.py" <<'EOF'
import ast, sys
tree = ast.parse(open(sys.argv[1]).read())
pins = next(ast.literal_eval(node.value) for node in tree.body
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "RUNTIME")
print(" ".join(pins))
EOF
)
if [ "$(cat "$CACHE/site.key" 2>/dev/null)" != "$RUNTIME" ]; then
  say "installing the aarch64 wheels of $RUNTIME"
  rm -rf "$CACHE/site" "$CACHE/site.partial"
  "$PYTHON" -m pip install -q --disable-pip-version-check --no-warn-conflicts --no-compile --target "$CACHE/site.partial" \
    --only-binary=:all: --platform manylinux_2_27_aarch64 --python-version 3.11 --implementation cp --abi cp311 \
    $RUNTIME >&2
  mv "$CACHE/site.partial" "$CACHE/site"
  "$CACHE/run" cortex-a76 -c "import ai_edge_litert.interpreter, numpy, PIL" >&2
  echo "$RUNTIME" >"$CACHE/site.key"
fi
echo "$CACHE"
