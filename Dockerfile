# The capgate image used by deploy/compose.yaml and deploy/kubernetes/ (build: docker build -t capgate .).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY server server
COPY auth auth
COPY tools tools
RUN pip install --no-cache-dir . && useradd --uid 10001 --no-create-home capgate && mkdir /data && chown capgate /data
USER 10001
ENV CAPGATE_DATA_DIR=/data CAPGATE_HOST=0.0.0.0 CAPGATE_PORT=8765
EXPOSE 8765
CMD ["capgate", "serve"]
