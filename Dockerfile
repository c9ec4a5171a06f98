# pgwarden container image. Multi-stage: build with dev dependencies, run with production ones only.
# Base: the current Node.js LTS (26), Alpine for size. No shell is needed at run time: the
# entrypoint is node itself (exec form), so SIGTERM reaches pgwarden, which stops cleanly.
ARG NODE_VERSION=26

FROM node:${NODE_VERSION}-alpine AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no `prepare` (the sources are not here yet) and no dev-only install scripts.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

FROM node:${NODE_VERSION}-alpine AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:${NODE_VERSION}-alpine AS runtime
ENV NODE_ENV=production \
    PGWARDEN_CONFIG=/etc/pgwarden/pgwarden.yaml
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# A safe default: the example configuration (dry-run). Mount your own at the same path.
COPY config/pgwarden.example.yaml /etc/pgwarden/pgwarden.yaml
USER node
EXPOSE 9816
ENTRYPOINT ["node", "/app/dist/main.js"]
CMD ["run"]
