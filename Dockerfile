FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY events ./events
COPY worker ./worker
# The processes run as an unprivileged user that owns only the data directory (0700: the database,
# its backups and the embedded Redis's files are nobody else's).
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home --shell /usr/sbin/nologin komas \
    && mkdir -p /app/data \
    && chown 10001:10001 /app/data \
    && chmod 0700 /app/data
ENV KOMAS_DATABASE_URL=sqlite+aiosqlite:////app/data/komas.db
VOLUME ["/app/data"]
USER 10001:10001
EXPOSE 8000
CMD ["komas", "up", "--host", "0.0.0.0"]
