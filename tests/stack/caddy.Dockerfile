# Stack-test stand-in for the official caddy image: Debian's caddy on the debootstrapped
# base (tests/stack/build_images.sh), laid out like the official image (/data, /config).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data
RUN mkdir -p /config /data /etc/caddy
EXPOSE 80 443
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
