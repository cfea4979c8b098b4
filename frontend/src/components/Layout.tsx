// Page frame: skip link, header with navigation (role-aware) and the user's menu.

import type { ReactNode } from "react";
import { NavLink } from "react-router-dom";

import { useAuth } from "../auth/AuthProvider";
import { highestRole } from "../auth/roles";
import { InboxNavLink } from "./InboxNavLink";

export function Layout({ children }: { children: ReactNode }) {
  const auth = useAuth();
  const role = highestRole(auth.roles);
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="app-header">
        <NavLink to="/fleet" className="brand" aria-label="CLPM home">
          <img src="/favicon.svg" alt="" width={26} height={26} />
          CLPM
        </NavLink>
        <nav className="main-nav" aria-label="Main">
          <ul>
            <li>
              <NavLink to="/fleet">Fleet</NavLink>
            </li>
            <li>
              <NavLink to="/clusters">Oscillation clusters</NavLink>
            </li>
            <li>
              <NavLink to="/apc">APC attainment</NavLink>
            </li>
            <li>
              <NavLink to="/my-items">My items</NavLink>
            </li>
            <li>
              <NavLink to="/fleet-reports">Reports</NavLink>
            </li>
            <li>
              <NavLink to="/alert-rules">Alert rules</NavLink>
            </li>
            <li>
              <InboxNavLink />
            </li>
            {auth.can("admin") && (
              <li>
                <NavLink to="/admin/loops">Loops admin</NavLink>
              </li>
            )}
            {auth.can("admin") && (
              <li>
                <NavLink to="/admin/audit">Audit trail</NavLink>
              </li>
            )}
          </ul>
        </nav>
        <div className="user-menu">
          <span className="who">
            <span className="sr-only">Signed in as </span>
            <strong>{auth.username}</strong> <span className="role-tag">{role ?? "no role"}</span>
          </span>
          <button type="button" className="header-button" onClick={() => void auth.signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" className="page" tabIndex={-1}>
        {children}
      </main>
    </>
  );
}
