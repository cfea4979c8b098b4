// Renders a page of the app for a test: a signed-in user with the given roles, the API over a
// fake gateway, and a router at the given address.

import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { MemoryRouter, Route, Routes } from "react-router-dom";

import { ApiContextProvider } from "../src/api/ApiProvider";
import type { ClpmApi } from "../src/api/endpoints";
import type { Role } from "../src/api/types";
import { AuthContext, type Auth } from "../src/auth/AuthProvider";
import { hasRole } from "../src/auth/roles";

export function authFor(roles: Role[], overrides: Partial<Auth> = {}): Auth {
  return {
    status: "signedIn",
    username: roles.at(-1) ?? "norole",
    roles,
    notice: null,
    signIn: async () => undefined,
    signOut: async () => undefined,
    completeSignIn: async () => "/",
    getToken: async () => "token",
    renew: async () => false,
    can: (role: Role) => hasRole(roles, role),
    ...overrides,
  };
}

export function renderPage(element: ReactElement, options: { api: ClpmApi; roles?: Role[]; path: string; at: string }) {
  return render(
    <AuthContext.Provider value={authFor(options.roles ?? ["viewer"])}>
      <ApiContextProvider value={options.api}>
        <MemoryRouter initialEntries={[options.at]}>
          <Routes>
            <Route path={options.path} element={element} />
            <Route path="*" element={<p>elsewhere</p>} />
          </Routes>
        </MemoryRouter>
      </ApiContextProvider>
    </AuthContext.Provider>,
  );
}
