// The application: sign-in gate, API access and the pages.

import { useMemo } from "react";
import { BrowserRouter, Navigate, Route, Routes, useLocation } from "react-router-dom";

import { ApiProvider } from "./api/ApiProvider";
import type { FrontendConfig } from "./api/types";
import { AuthProvider, CALLBACK_PATH, createUserManager, useAuth } from "./auth/AuthProvider";
import { Loading } from "./components/AsyncView";
import { Layout } from "./components/Layout";
import { AlertRulesPage } from "./pages/alerts/AlertRulesPage";
import { InboxPage } from "./pages/alerts/InboxPage";
import { ApcPage } from "./pages/ApcPage";
import { AuditPage } from "./pages/AuditPage";
import { CallbackPage } from "./pages/CallbackPage";
import { ClustersPage } from "./pages/ClustersPage";
import { FleetPage } from "./pages/FleetPage";
import { LoopConfigPage } from "./pages/loop/LoopConfigPage";
import { LoopDetailPage } from "./pages/loop/LoopDetailPage";
import { LoopsAdminPage } from "./pages/LoopsAdminPage";
import { MyItemsPage } from "./pages/MyItemsPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { ReportsPage } from "./pages/ReportsPage";
import { SignInPage } from "./pages/SignInPage";

/** The pages of a signed-in user (paths chosen not to collide with the API's own routes). */
export function AppRoutes() {
  return (
    <Routes>
      <Route path="/" element={<Navigate to="/fleet" replace />} />
      <Route path="/fleet" element={<FleetPage />} />
      <Route path="/fleet/loops/:loopId" element={<LoopDetailPage />} />
      <Route path="/fleet/loops/:loopId/config" element={<LoopConfigPage />} />
      <Route path="/clusters" element={<ClustersPage />} />
      <Route path="/apc" element={<ApcPage />} />
      <Route path="/admin/loops" element={<LoopsAdminPage />} />
      <Route path="/my-items" element={<MyItemsPage />} />
      <Route path="/fleet-reports" element={<ReportsPage />} />
      <Route path="/admin/audit" element={<AuditPage />} />
      <Route path="/notifications" element={<InboxPage />} />
      <Route path="/alert-rules" element={<AlertRulesPage />} />
      <Route path="*" element={<NotFoundPage />} />
    </Routes>
  );
}

function Gate({ apiBase }: { apiBase: string }) {
  const auth = useAuth();
  const location = useLocation();
  if (location.pathname === CALLBACK_PATH) return <CallbackPage />;
  if (auth.status === "checking") return <Loading label="Checking your session…" />;
  if (auth.status === "signedOut") return <SignInPage />;
  return (
    <ApiProvider baseUrl={apiBase}>
      <Layout>
        <AppRoutes />
      </Layout>
    </ApiProvider>
  );
}

export function App({ config }: { config: FrontendConfig }) {
  const manager = useMemo(() => createUserManager(config), [config]);
  return (
    <AuthProvider manager={manager}>
      <BrowserRouter>
        <Gate apiBase={config.api_base_url} />
      </BrowserRouter>
    </AuthProvider>
  );
}
