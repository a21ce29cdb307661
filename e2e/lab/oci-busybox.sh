#!/bin/sh
# Builds a one-layer OCI image archive holding a static busybox.
# Usage: oci-busybox.sh BUSYBOX_BINARY OUTPUT_TAR
# Image name: kubeseed.io/lab/busybox:1 (no registry is reachable from the
# lab, so images are made locally and imported with `ctr images import`).
set -eu
busybox=$1
out=$2
name=kubeseed.io/lab/busybox:1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/layer/bin" "$work/image/blobs/sha256"
cp "$busybox" "$work/layer/bin/busybox"
for applet in sh echo cat sleep hostname ls; do
	ln -s busybox "$work/layer/bin/$applet"
done

blob() {
	digest=$(sha256sum "$1" | cut -d' ' -f1)
	mv "$1" "$work/image/blobs/sha256/$digest"
	echo "$digest"
}
size() { wc -c < "$work/image/blobs/sha256/$1" | tr -d ' '; }

# Fixed owner and mtime keep the layer digest stable between builds.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
	-C "$work/layer" -cf "$work/layer.tar" bin
layer=$(blob "$work/layer.tar")

cat > "$work/config.json" <<JSON
{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:$layer"]}}
JSON
config=$(blob "$work/config.json")

cat > "$work/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config","size":$(size "$config")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$layer","size":$(size "$layer")}]}
JSON
manifest=$(blob "$work/manifest.json")

cat > "$work/image/index.json" <<JSON
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest","size":$(size "$manifest"),"annotations":{"io.containerd.image.name":"$name","org.opencontainers.image.ref.name":"1"}}]}
JSON
printf '{"imageLayoutVersion":"1.0.0"}' > "$work/image/oci-layout"

mkdir -p "$(dirname "$out")"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
	-C "$work/image" -cf "$out" oci-layout index.json blobs
