# BondX Stream: one image for every role (`bondx all | projector | gateway | simulate`).
FROM node:20-slim

WORKDIR /app
ENV NODE_ENV=production \
    HOST=0.0.0.0

COPY package.json package-lock.json ./
# tsx is a runtime dependency: the TypeScript sources run as they are, no build step.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY src ./src
COPY schemas ./schemas
COPY public ./public
COPY tsconfig.json ./

USER node
EXPOSE 8000 8001
# node itself is PID 1 (tsx as a loader, not a wrapper process), so SIGTERM reaches the graceful shutdown.
ENTRYPOINT ["node", "--import", "tsx", "src/cli/bondx.ts"]
CMD ["all"]
