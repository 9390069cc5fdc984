# BondX Stream: one image for every role (`bondx all | projector | gateway | simulate`).

# Stage 1: the dashboard bundle (esbuild is a dev dependency; the bundle is generated, not committed).
FROM node:20-slim AS dashboard
WORKDIR /build
COPY package.json package-lock.json ./
COPY packages ./packages
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY schemas ./schemas
COPY public ./public
COPY scripts/build-dashboard.ts ./scripts/
RUN npm run build:dashboard

# Stage 2: the runtime, production dependencies only.
FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production \
    HOST=0.0.0.0

COPY package.json package-lock.json ./
# The workspace's package.json must be there for `npm ci` to accept the lock file.
COPY packages ./packages
# tsx is a runtime dependency: the TypeScript sources run as they are, no build step.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY src ./src
COPY schemas ./schemas
COPY public ./public
COPY --from=dashboard /build/public/dashboard.js ./public/dashboard.js
COPY tsconfig.json ./

USER node
EXPOSE 8000 8001
# node itself is PID 1 (tsx as a loader, not a wrapper process), so SIGTERM reaches the graceful shutdown.
ENTRYPOINT ["node", "--import", "tsx", "src/cli/bondx.ts"]
CMD ["all"]
