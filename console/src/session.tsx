// Who is signed in: the session as the server reports it, with the CSRF token every change must carry.
import { createContext, useContext, useEffect, type ReactNode } from "react";
import { type QueryClient, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, SIGNED_OUT_EVENT, setCsrf, type Session } from "./api";

const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside SessionProvider");
  return session;
}

export function useCanEdit(): boolean {
  return useSession().permissions?.includes("edit") ?? false;
}

/** Another token may see other things: nothing read with the previous one is kept. */
export function forgetAllButSession(client: QueryClient): void {
  client.removeQueries({ predicate: (query) => query.queryKey[0] !== "session" });
}

export function useSignedIn(): (session: Session) => void {
  const client = useQueryClient();
  return (session) => {
    setCsrf(session.csrf);
    forgetAllButSession(client);
    client.setQueryData(["session"], session);
  };
}

export function SessionProvider({ children, fallback }: { children: ReactNode; fallback: ReactNode }) {
  const client = useQueryClient();
  const { data, error } = useQuery({
    queryKey: ["session"],
    queryFn: async () => {
      const session = await api.get<Session>("/session");
      setCsrf(session.csrf);
      return session;
    },
    staleTime: Infinity,
  });
  useEffect(() => {
    // A request refused for want of a session (expired, signed out elsewhere): ask who is signed in again.
    const refresh = () => client.invalidateQueries({ queryKey: ["session"] });
    window.addEventListener(SIGNED_OUT_EVENT, refresh);
    return () => window.removeEventListener(SIGNED_OUT_EVENT, refresh);
  }, [client]);
  if (error) return <p className="notice error" role="alert">The console cannot reach the server: {error.message}</p>;
  if (!data) return <>{fallback}</>;
  return <SessionContext.Provider value={data}>{children}</SessionContext.Provider>;
}
