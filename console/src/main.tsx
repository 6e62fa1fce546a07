import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { Router } from "wouter";
import "@xyflow/react/dist/style.css";
import "react-json-view-lite/dist/index.css";
import "./styles.css";
import { App } from "./App";
import { ApiError } from "./api";

const queries = new QueryClient({
  defaultOptions: {
    queries: {
      // A refused or missing thing does not get better by asking again.
      retry: (count, error) => !(error instanceof ApiError && error.code < 5000) && count < 2,
      refetchOnWindowFocus: false,
    },
  },
});

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <QueryClientProvider client={queries}>
      <Router base="/console">
        <App />
      </Router>
    </QueryClientProvider>
  </StrictMode>,
);
