// vitest set-up: DOM matchers; jsdom has no canvas, so the charts render their fallback text.
import "@testing-library/jest-dom/vitest";
import { cleanup } from "@testing-library/react";
import { afterEach } from "vitest";

if (typeof HTMLCanvasElement !== "undefined") {
  HTMLCanvasElement.prototype.getContext = (() => null) as unknown as HTMLCanvasElement["getContext"];
}

afterEach(() => {
  if (typeof document === "undefined") return;
  cleanup();
  sessionStorage.clear();
});
