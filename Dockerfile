# The shipped image: the static musl binary and nothing else. No shell, no libc, no CA bundle:
# in a cluster the agent trusts only the CA from its service-account mount.
#
# Build the binary first, then the image (the build context is only that binary, see
# .dockerignore):
#   bash scripts/build-static.sh            # x86_64
#   docker build -t woodpecker-k8s-agent .
# For arm64: `bash scripts/build-static.sh aarch64` and
#   docker build --build-arg RUST_TARGET=aarch64-unknown-linux-musl --platform linux/arm64 .
FROM scratch
ARG RUST_TARGET=x86_64-unknown-linux-musl
COPY target/${RUST_TARGET}/release/woodpecker-k8s-agent /woodpecker-k8s-agent
# The numeric "nonroot" user of distroless images: a scratch image has no /etc/passwd, and a
# numeric USER lets `runAsNonRoot` be verified by the kubelet.
USER 65532:65532
EXPOSE 3000
ENTRYPOINT ["/woodpecker-k8s-agent"]
CMD ["agent"]
