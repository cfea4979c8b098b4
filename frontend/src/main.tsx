// Entry point: learn the sign-in settings from the gateway, then start the app.

import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

import { App } from "./App";
import { loadRuntimeConfig } from "./runtimeConfig";
import "./styles.css";

const root = createRoot(document.getElementById("root") as HTMLElement);

function start(): void {
  loadRuntimeConfig(import.meta.env)
    .then((config) =>
      root.render(
        <StrictMode>
          <App config={config} />
        </StrictMode>,
      ),
    )
    .catch((error: Error) =>
      root.render(
        <main className="signin" id="main">
          <div className="panel state-error" role="alert">
            <h1>CLPM cannot start</h1>
            <p>{error.message}</p>
            <button type="button" onClick={start}>
              Try again
            </button>
          </div>
        </main>,
      ),
    );
}

start();
