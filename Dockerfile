FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY events ./events
COPY worker ./worker
RUN pip install --no-cache-dir . && mkdir -p /app/data
ENV KOMAS_DATABASE_URL=sqlite+aiosqlite:////app/data/komas.db
VOLUME ["/app/data"]
EXPOSE 8000
CMD ["komas", "up", "--host", "0.0.0.0"]
