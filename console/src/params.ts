// A page's filters live in its URL's query, so that a link, a reload and the back button keep them.
import { useLocation, useSearch } from "wouter";

type Update = (changes: Record<string, string | null>, push?: boolean) => void;

/** The query's values, and a function that changes some (replacing the history entry, unless `push`: a page
 *  turned is one the back button returns to). A change that names no paging key starts again from page one. */
export function useQueryParams(): [URLSearchParams, Update] {
  const search = useSearch();
  const [location, navigate] = useLocation();
  const update: Update = (changes, push = false) => {
    const next = new URLSearchParams(search);
    for (const [key, value] of Object.entries(changes)) {
      if (value) next.set(key, value);
      else next.delete(key);
    }
    for (const key of ["page", "after"]) if (!(key in changes)) next.delete(key);
    navigate(`${location}${next.toString() ? `?${next}` : ""}`, { replace: !push });
  };
  return [new URLSearchParams(search), update];
}

export function parseJson(text: unknown): unknown {
  if (typeof text !== "string") return text;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
