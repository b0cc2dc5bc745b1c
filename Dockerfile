# The Assent server as a container (docs/deployment.md §14). Build from a clone:
#
#   dotnet publish src/Assent.Cli -c Release -r linux-x64 --self-contained -o publish
#   docker build -t assent .
#   docker run -d --name assent -p 8400:8400 -v assent-data:/data -e Assent__Issuer=http://localhost:8400 assent
#   docker logs assent            # the first start prints the admin's one-time enrolment code
#
# The published build is self-contained (it carries the .NET runtime), so the image needs only the
# libraries .NET itself loads: ICU (globalization), OpenSSL (TLS) and the CA certificates.
FROM debian:bookworm-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libicu72 libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin assent \
 && mkdir -p /data && chown assent /data && chmod 0700 /data

COPY --chown=root:root --chmod=0755 publish/ /opt/assent/
RUN ln -s /opt/assent/assent /usr/local/bin/assent

# Runs as an unprivileged user; the database and master.key live in the volume, owner-only.
USER assent
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8400
ENV ASSENT_SERVER=http://localhost:8400

# Healthy when the server can take writes (/healthz/ready, docs/deployment.md §13).
HEALTHCHECK --interval=30s --timeout=6s --start-period=20s --retries=3 CMD ["assent", "health", "--path", "/healthz/ready"]

ENTRYPOINT ["assent"]
CMD ["server", "--urls", "http://0.0.0.0:8400", "--data", "/data"]
