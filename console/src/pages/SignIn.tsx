import { useState, type FormEvent } from "react";
import { useMutation } from "@tanstack/react-query";
import { api, type Session } from "../api";
import { useSignedIn } from "../session";

/** Where to go after signing in: a page of the console, never another site. */
export function nextPage(search: string): string {
  const next = new URLSearchParams(search).get("next") ?? "";
  const local = next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/sign-in") && next !== "/";
  return local ? next : "/workflows";
}

export function SignIn() {
  const [token, setToken] = useState("");
  const signedIn = useSignedIn();
  const signIn = useMutation({
    mutationFn: (value: string) => api.post<Session>("/session", { token: value }),
    onSuccess: (session) => {
      setToken("");
      signedIn(session); // the app then leaves the sign-in page for `next`
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    signIn.mutate(token);
  };
  return (
    <main className="sign-in" id="main">
      <form method="post" onSubmit={submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">Sign in to knotflow</h1>
        <p>Paste an API token (<code>pat_…</code>). You will see the spaces it can access.</p>
        <label htmlFor="token">API token</label>
        <input id="token" name="token" type="password" autoComplete="off" spellCheck={false} required autoFocus
          value={token} onChange={(event) => setToken(event.target.value)} />
        {signIn.error && <p className="error" role="alert">{signIn.error.message}</p>}
        <button type="submit" disabled={signIn.isPending || !token.trim()}>
          {signIn.isPending ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
