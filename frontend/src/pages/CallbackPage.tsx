// The redirect target after sign-in: exchanges the code (PKCE) and returns to the app.

import { useEffect } from "react";
import { useNavigate } from "react-router-dom";

import { useAuth } from "../auth/AuthProvider";
import { Loading } from "../components/AsyncView";

export function CallbackPage() {
  const { completeSignIn } = useAuth();
  const navigate = useNavigate();
  useEffect(() => {
    let active = true;
    void completeSignIn().then((returnTo) => {
      if (active) navigate(returnTo === "/auth/callback" ? "/" : returnTo, { replace: true });
    });
    return () => {
      active = false;
    };
  }, [completeSignIn, navigate]);
  return <Loading label="Signing in…" />;
}
