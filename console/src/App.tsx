import { useEffect, type ReactNode } from "react";
import { Link, Redirect, Route, Switch, useLocation, useSearch } from "wouter";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { LogOut } from "lucide-react";
import { api, setCsrf } from "./api";
import { forgetAllButSession, SessionProvider, useSession } from "./session";
import { nextPage, SignIn } from "./pages/SignIn";
import { Workflows } from "./pages/Workflows";
import { WorkflowPage } from "./pages/Workflow";
import { Runs } from "./pages/Runs";
import { RunPage } from "./pages/Run";

export function App() {
  return (
    <SessionProvider fallback={<p className="notice">Loading…</p>}>
      <Routes />
    </SessionProvider>
  );
}

function Routes() {
  const session = useSession();
  const [location] = useLocation();
  const search = useSearch();
  if (!session.signed_in) {
    if (location === "/sign-in") return <SignIn />;
    const next = location + (search ? `?${search}` : "");
    return <Redirect to={`/sign-in?next=${encodeURIComponent(next)}`} replace />;
  }
  return (
    <Shell>
      <Switch>
        <Route path="/sign-in" key="sign-in"><Redirect to={nextPage(search)} replace /></Route>
        <Route path="/workflows" component={Workflows} />
        <Route path="/workflows/:id/:tab?" component={WorkflowPage} />
        <Route path="/runs" component={Runs} />
        <Route path="/runs/:id" component={RunPage} />
        <Route path="/" key="home"><Redirect to="/workflows" replace /></Route>
        <Route><NotFound /></Route>
      </Switch>
    </Shell>
  );
}

function Shell({ children }: { children: ReactNode }) {
  const session = useSession();
  const client = useQueryClient();
  const [location] = useLocation();
  const signOut = useMutation({
    mutationFn: () => api.delete("/session"),
    onSuccess: () => {
      setCsrf("");
      forgetAllButSession(client);
      client.resetQueries({ queryKey: ["session"] });
    },
  });
  useEffect(() => {
    document.getElementById("main")?.focus({ preventScroll: true });
  }, [location]);
  const section = location.startsWith("/runs") ? "runs" : "workflows";
  return (
    <div className="shell">
      <a className="skip" href="#main">Skip to content</a>
      <header className="topbar">
        <span className="brand">knotflow</span>
        <nav aria-label="Sections">
          <Link href="/workflows" aria-current={section === "workflows" ? "page" : undefined}>Workflows</Link>
          <Link href="/runs" aria-current={section === "runs" ? "page" : undefined}>Runs</Link>
        </nav>
        <span className="who" title="The API token you signed in with">{session.token_name}</span>
        <button type="button" className="quiet" onClick={() => signOut.mutate()} disabled={signOut.isPending}>
          <LogOut size={16} aria-hidden /> Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>{children}</main>
    </div>
  );
}

function NotFound() {
  return (
    <section>
      <h1>Not found</h1>
      <p>This page does not exist. <Link href="/workflows">Go to the workflows</Link>.</p>
    </section>
  );
}
