FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY events ./events
COPY worker ./worker
RUN pip install --no-cache-dir .
ENV KOMAS_DATABASE_URL=sqlite+aiosqlite:////app/data/komas.db
VOLUME ["/app/data"]
CMD ["komas", "worker"]
