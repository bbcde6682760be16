#!/usr/bin/env bash
# Builds a stand-in for public.ecr.aws/lambda/python:3.12-x86_64, the image `sam local invoke`
# starts from, when no container registry can be reached. Offline from Debian's packages: a
# minbase bookworm root filesystem, this machine's CPython 3.12 in /var/lang (where Lambda's
# image keeps it), awslambdaric and boto3, and a /var/runtime/bootstrap with Lambda's sys.path.
# The image carries the hash of its recipe: a second run with the same recipe does nothing.
# A stand-in: Debian's glibc instead of Amazon Linux, this CPython's patch level and boto3.
set -euo pipefail

TAG="public.ecr.aws/lambda/python:3.12-x86_64"
PYTHON_HOME="${SAM_LOCAL_PYTHON_HOME:-/root/.pyenv/versions/3.12.1}"
RUNTIME_PACKAGES="awslambdaric boto3"
# What CPython 3.12 links against (ssl, ctypes, sqlite3, zlib, bz2, lzma, readline, curses).
DEBIAN_PACKAGES="libssl3,libffi8,libsqlite3-0,zlib1g,libbz2-1.0,liblzma5,libreadline8,libncursesw6,ca-certificates,tzdata"
LABEL="org.restoredrill.sam-local.recipe"

[ -x "$PYTHON_HOME/bin/python3.12" ] || {
  echo "sam-local image: no CPython 3.12 at $PYTHON_HOME (set SAM_LOCAL_PYTHON_HOME)" >&2
  exit 1
}

recipe_hash() {
  {
    cat "$0"
    "$PYTHON_HOME/bin/python3.12" -VV
    echo "$RUNTIME_PACKAGES $DEBIAN_PACKAGES"
  } | sha256sum | cut -c1-16
}

RECIPE="$(recipe_hash)"
if [ "$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$TAG" 2>/dev/null)" = "$RECIPE" ]; then
  echo "sam-local image: $TAG is current (recipe $RECIPE)"
  exit 0
fi

echo "sam-local image: building $TAG (recipe $RECIPE)"
WORK="$(mktemp -d /var/tmp/restoredrill-sam-image.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
ROOTFS="$WORK/rootfs"

debootstrap --variant=minbase --include="$DEBIAN_PACKAGES" bookworm "$ROOTFS" >"$WORK/debootstrap.log" 2>&1 || {
  tail -n 30 "$WORK/debootstrap.log" >&2
  exit 1
}
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*

mkdir -p "$ROOTFS/var/lang" "$ROOTFS/var/runtime" "$ROOTFS/var/task" "$ROOTFS/opt"
cp -a "$PYTHON_HOME/." "$ROOTFS/var/lang/"
rm -rf "$ROOTFS/var/lang/lib/python3.12/test" "$ROOTFS/var/lang/lib/python3.12/idlelib" \
  "$ROOTFS/var/lang/lib/python3.12/tkinter" "$ROOTFS/var/lang/lib/python3.12/site-packages"/*
"$PYTHON_HOME/bin/python3.12" -m pip install --quiet --disable-pip-version-check \
  --target "$ROOTFS/var/lang/lib/python3.12/site-packages" \
  --platform manylinux2014_x86_64 --python-version 3.12 --only-binary=:all: \
  $RUNTIME_PACKAGES >"$WORK/pip.log" 2>&1 || {
  tail -n 30 "$WORK/pip.log" >&2
  exit 1
}

# Lambda's documented module search order for Python 3.12: the function, the layers, then the
# runtime's own packages (a boto3 shipped in a layer wins over the runtime's).
cat >"$ROOTFS/var/runtime/bootstrap" <<'EOF'
#!/bin/sh
export PYTHONPATH="/var/task:/opt/python/lib/python3.12/site-packages:/opt/python:/var/runtime"
exec /var/lang/bin/python3.12 -m awslambdaric "${_HANDLER:-$AWS_LAMBDA_FUNCTION_HANDLER}"
EOF
chmod 755 "$ROOTFS/var/runtime/bootstrap"

tar -C "$ROOTFS" -c . | docker import \
  --change 'ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin:/opt/bin' \
  --change 'ENV LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib' \
  --change 'ENV LAMBDA_TASK_ROOT=/var/task' \
  --change 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' \
  --change 'ENV TZ=:/etc/localtime' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'WORKDIR /var/task' \
  --change 'ENTRYPOINT ["/var/runtime/bootstrap"]' \
  --change "LABEL $LABEL=$RECIPE" \
  - "$TAG" >/dev/null
echo "sam-local image: $TAG built ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%d MB", $1/1000000}'))"
