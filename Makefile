PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint bench clean console console-check sandbox-js sandbox-js-check screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/knotflow db upgrade
	$(BIN)/knotflow serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# The console's assets are built from console/ (Vite) into src/knotflow/console/static and committed, so `serve`
# and `test` need no Node.js. After changing console/, run `make console` and commit the result.
console:
	cd console && npm ci --no-audit --no-fund && npm run build

# CI: the committed assets are exactly what the committed sources build.
console-check: console
	git diff --exit-code --stat -- src/knotflow/console/static
	test -z "$$(git status --porcelain -- src/knotflow/console/static)"

# The JavaScript Code node's libraries (TypeScript transpiler, console formatting) are bundled from sandbox-js/
# (esbuild) into src/knotflow/sandbox/vendor and committed, so a server needs no Node.js. After changing
# sandbox-js/, run `make sandbox-js` and commit the result.
sandbox-js:
	cd sandbox-js && npm ci --no-audit --no-fund && npm run build

# CI: the committed bundles are exactly what the committed sources build.
sandbox-js-check: sandbox-js
	git diff --exit-code --stat -- src/knotflow/sandbox/vendor
	test -z "$$(git status --porcelain -- src/knotflow/sandbox/vendor)"

# The README's screenshots of the console (docs/console/*.png), taken in headless Chromium.
screenshots: $(STAMP)
	$(BIN)/python console/screenshots.py docs/console

clean:
	rm -rf $(VENV) .knotflow
