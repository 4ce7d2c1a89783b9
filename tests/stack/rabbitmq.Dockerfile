# Stack-test stand-in for the official rabbitmq image: Debian's rabbitmq-server on the
# debootstrapped base (tests/stack/build_images.sh). Same paths as the official image:
# /etc/rabbitmq/conf.d/*.conf, /var/lib/rabbitmq; management and Prometheus plugins on.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN mkdir -p /etc/rabbitmq/conf.d \
 && echo '[rabbitmq_management,rabbitmq_prometheus].' > /etc/rabbitmq/enabled_plugins \
 && chown -R rabbitmq:rabbitmq /etc/rabbitmq /var/lib/rabbitmq
ENV RABBITMQ_CONFIG_FILES=/etc/rabbitmq/conf.d RABBITMQ_LOGS=-
EXPOSE 5672 15672 15692
# like the official image's entrypoint: own the data folder, then run as rabbitmq
CMD ["sh", "-c", "chown -R rabbitmq:rabbitmq /var/lib/rabbitmq && exec runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server"]
