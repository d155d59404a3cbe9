# One image for every role: web, image workers, control worker (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 APP_ENV=production VAR_DIR=/var/lib/catalogue
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --system --home /var/lib/catalogue catalogue && mkdir -p /var/lib/catalogue \
    && chown catalogue /var/lib/catalogue
USER catalogue
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "--bind=0.0.0.0:8000", "--workers=4", "--threads=4", "--access-logfile=-"]
