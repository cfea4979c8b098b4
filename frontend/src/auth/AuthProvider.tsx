// Sign-in with OIDC Authorization Code + PKCE (oidc-client-ts): session state, token renewal
// with the refresh token, sign-out at the issuer, and the roles of the user.

import { UserManager, WebStorageStateStore, type User } from "oidc-client-ts";
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";

import type { FrontendConfig, Role } from "../api/types";
import { hasRole, rolesFromToken } from "./roles";

export const CALLBACK_PATH = "/auth/callback";

export type AuthStatus = "checking" | "signedOut" | "signedIn";

export interface AuthState {
  status: AuthStatus;
  username: string | null;
  roles: Role[];
  /** Why the user is signed out (session ended, sign-in failed), if known. */
  notice: string | null;
}

export interface Auth extends AuthState {
  signIn: (returnTo?: string) => Promise<void>;
  signOut: () => Promise<void>;
  /** Finish the redirect back from the issuer; resolves to the path to return to. */
  completeSignIn: () => Promise<string>;
  getToken: () => Promise<string | null>;
  /** Renew the access token with the refresh token; false when the session is over. */
  renew: () => Promise<boolean>;
  can: (role: Role) => boolean;
}

export const AuthContext = createContext<Auth | null>(null);

export function createUserManager(config: FrontendConfig, origin: string = window.location.origin): UserManager {
  return new UserManager({
    authority: config.oidc_issuer,
    client_id: config.oidc_client_id,
    redirect_uri: `${origin}${CALLBACK_PATH}`,
    post_logout_redirect_uri: `${origin}/`,
    response_type: "code",
    scope: config.oidc_scope,
    userStore: new WebStorageStateStore({ store: window.sessionStorage }),
    automaticSilentRenew: true,
    accessTokenExpiringNotificationTimeInSeconds: 60,
    monitorSession: false,
    loadUserInfo: false,
  });
}

function stateOf(user: User | null, notice: string | null = null): AuthState {
  if (!user || user.expired) return { status: "signedOut", username: null, roles: [], notice };
  const profile = user.profile as { preferred_username?: string; name?: string; sub?: string };
  return {
    status: "signedIn",
    username: profile.preferred_username ?? profile.name ?? profile.sub ?? null,
    roles: rolesFromToken(user.access_token),
    notice: null,
  };
}

function safeReturnPath(value: unknown): string {
  // only paths of this app: never an absolute URL (no open redirect through the state)
  return typeof value === "string" && value.startsWith("/") && !value.startsWith("//") ? value : "/";
}

export function AuthProvider({ manager, children }: { manager: UserManager; children: ReactNode }) {
  const [state, setState] = useState<AuthState>({ status: "checking", username: null, roles: [], notice: null });

  useEffect(() => {
    let active = true;
    const loaded = (user: User) => {
      if (active) setState(stateOf(user));
    };
    const unloaded = () => {
      if (active) setState(stateOf(null));
    };
    const renewFailed = () => {
      if (active) setState(stateOf(null, "Your session has ended. Please sign in again."));
    };
    manager.events.addUserLoaded(loaded);
    manager.events.addUserUnloaded(unloaded);
    manager.events.addSilentRenewError(renewFailed);
    if (window.location.pathname !== CALLBACK_PATH) {
      manager
        .getUser()
        .then(async (user) => {
          if (user && user.expired && user.refresh_token) {
            try {
              return await manager.signinSilent();
            } catch {
              await manager.removeUser();
              return null;
            }
          }
          return user;
        })
        .then((user) => {
          if (active) setState(stateOf(user));
        })
        .catch(() => {
          if (active) setState(stateOf(null));
        });
    }
    return () => {
      active = false;
      manager.events.removeUserLoaded(loaded);
      manager.events.removeUserUnloaded(unloaded);
      manager.events.removeSilentRenewError(renewFailed);
    };
  }, [manager]);

  const signIn = useCallback(
    (returnTo?: string) =>
      manager.signinRedirect({
        state: { returnTo: safeReturnPath(returnTo ?? window.location.pathname + window.location.search) },
      }),
    [manager],
  );

  const signOut = useCallback(async () => {
    const user = await manager.getUser();
    try {
      await manager.signoutRedirect({ id_token_hint: user?.id_token });
    } catch {
      await manager.removeUser();
      setState(stateOf(null, "You are signed out of CLPM."));
    }
  }, [manager]);

  // the redirect answer can be used once: a second call (React StrictMode) shares the first
  const completion = useRef<Promise<string> | null>(null);
  const completeSignIn = useCallback(() => {
    completion.current ??= finishSignIn();
    return completion.current;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [manager]);

  const finishSignIn = async (): Promise<string> => {
    try {
      const user = await manager.signinRedirectCallback();
      setState(stateOf(user));
      return safeReturnPath((user.state as { returnTo?: unknown } | undefined)?.returnTo);
    } catch (error) {
      const reason = new URLSearchParams(window.location.search).get("error_description");
      setState(stateOf(null, `Sign-in failed: ${reason ?? (error as Error).message}`));
      return "/";
    }
  };

  const getToken = useCallback(async () => {
    const user = await manager.getUser();
    return user && !user.expired ? user.access_token : null;
  }, [manager]);

  const renew = useCallback(async () => {
    try {
      const user = await manager.signinSilent();
      return !!user;
    } catch {
      await manager.removeUser();
      setState(stateOf(null, "Your session has ended. Please sign in again."));
      return false;
    }
  }, [manager]);

  const value = useMemo<Auth>(
    () => ({
      ...state,
      signIn,
      signOut,
      completeSignIn,
      getToken,
      renew,
      can: (role: Role) => hasRole(state.roles, role),
    }),
    [state, signIn, signOut, completeSignIn, getToken, renew],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  const auth = useContext(AuthContext);
  if (!auth) throw new Error("useAuth() outside <AuthProvider>");
  return auth;
}
