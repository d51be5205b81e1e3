// Light or dark: the system's choice unless the user forced one (kept in localStorage).

const KEY = "epmdx.theme";
const NEXT = { auto: "light", light: "dark", dark: "auto" };

function apply(button, theme) {
  if (theme === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  button.textContent = theme === "auto" ? "◐ auto" : theme === "light" ? "☀ light" : "☾ dark";
  button.setAttribute("aria-label", "Colour theme: " + theme + " (press to change)");
}

export function setupTheme(button) {
  let theme = localStorage.getItem(KEY) || "auto";
  if (!NEXT[theme]) theme = "auto";
  apply(button, theme);
  button.addEventListener("click", () => {
    theme = NEXT[theme];
    if (theme === "auto") localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, theme);
    apply(button, theme);
  });
}
