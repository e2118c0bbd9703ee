# The model registry service. One image serves every role in docker-compose.yml: the web
# server (the default command below), the Celery worker and beat, and the migration job.
FROM python:3.11-slim

# PYTHONPATH: the source tree in /app is what runs (manage.py, gunicorn and celery all
# import from it); `pip install .` below supplies the dependencies.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app

# An unprivileged user with a fixed uid, so mounted volumes can be given to it.
RUN groupadd --system --gid 10001 registry \
 && useradd --system --uid 10001 --gid registry --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin registry

# Dependencies first, read from pyproject.toml at the versions requirements.lock pins: this
# layer is rebuilt only when the dependencies change, not on every code change.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install -c requirements.lock -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY . .
RUN pip install -c requirements.lock . \
 && rm -rf build ./*.egg-info

# Static files are collected into the image (served by WhiteNoise). Settings refuse to load
# without a secret key when DEBUG is off, so this one command gets a throwaway key; it is
# never stored in the image's environment. DEBUG must be off here so the hashed manifest
# that production uses is written.
RUN DJANGO_SECRET_KEY=collectstatic-build-only-not-a-secret DJANGO_DEBUG=false \
        python manage.py collectstatic --noinput

# REGISTRY_DATA_DIR's default (the embedded SQLite/file-store mode) must be writable.
RUN mkdir -p /app/var && chown registry:registry /app/var

# Numeric, so orchestrators can verify the image does not run as root.
USER 10001:10001

EXPOSE 8000

# urllib rather than curl: the slim image has no curl. A non-2xx answer raises, so exits 1.
# The request's Host is 127.0.0.1, which must therefore be in DJANGO_ALLOWED_HOSTS.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

# Through `sh -c` so the GUNICORN_* variables expand at start; `exec` makes gunicorn PID 1 so
# it receives the container's stop signal directly.
CMD ["sh", "-c", "exec gunicorn config.wsgi:application --bind 0.0.0.0:8000 --workers ${GUNICORN_WORKERS:-3} --threads ${GUNICORN_THREADS:-4} --keep-alive 5 --access-logfile -"]
