// Shown when nobody is signed in: one button to the identity provider's sign-in page.

import { useAuth } from "../auth/AuthProvider";

export function SignInPage() {
  const auth = useAuth();
  return (
    <main className="signin" id="main">
      <div className="panel">
        <img src="/favicon.svg" alt="" width={48} height={48} />
        <h1>Control Loop Performance Monitoring</h1>
        {auth.notice && (
          <p className="notice notice-info" role="status">
            {auth.notice}
          </p>
        )}
        <p className="muted">Sign in with your plant account to see the loops, their health and diagnoses.</p>
        <button type="button" onClick={() => void auth.signIn()} autoFocus>
          Sign in
        </button>
      </div>
    </main>
  );
}
