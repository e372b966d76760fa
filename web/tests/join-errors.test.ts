// @vitest-environment happy-dom
import { beforeEach, describe, expect, it } from "vitest";
import { ApiError, parseErrorDetail } from "../src/api";
import { clearFieldErrors, showJoinError, type ProfileErrorView } from "../src/profile";

// The profile form as index.html has it.
function form(): ProfileErrorView {
  document.body.innerHTML = `
    <form id="profile-form">
      <input id="display-name" type="text" />
      <p id="display-name-error" class="field-error" hidden></p>
      <div id="avatar-choices"></div>
      <p id="avatar-error" class="field-error" hidden></p>
      <p id="profile-error" class="field-error" hidden></p>
    </form>`;
  const get = (id: string) => document.getElementById(id) as HTMLElement;
  return {
    name: get("display-name") as HTMLInputElement,
    nameError: get("display-name-error"),
    avatarError: get("avatar-error"),
    profileError: get("profile-error"),
  };
}

/** A 422 exactly as the edge words a refused name (token_service/names.py). */
function refusedName(msg: string): ApiError {
  const { message, fieldErrors } = parseErrorDetail({
    detail: [{ loc: ["body", "displayName"], msg, type: "name_reserved" }],
  });
  return new ApiError(422, message, fieldErrors);
}

const never = (): string => {
  throw new Error("not an edge error");
};

describe("a refused name", () => {
  let view: ProfileErrorView;
  beforeEach(() => {
    view = form();
  });

  it("shows the edge's reason next to the name field and keeps what was typed", () => {
    view.name.value = "Adm1n";
    const reason = "looks like “admin”, which is reserved for the host and the show's staff; please pick another name";
    showJoinError(view, refusedName(reason), never);
    expect(view.nameError.hidden).toBe(false);
    expect(view.nameError.textContent).toBe(reason);
    expect(view.name.getAttribute("aria-invalid")).toBe("true");
    expect(view.name.value).toBe("Adm1n");
    expect(view.profileError.hidden).toBe(true);
    expect(view.avatarError.hidden).toBe(true);
  });

  it("renders a reason as text, never as markup", () => {
    const reason = '<img src=x onerror="window.__ran = 1"><b>bold</b>';
    showJoinError(view, refusedName(reason), never);
    expect(view.nameError.textContent).toBe(reason);
    expect(view.nameError.children.length).toBe(0);
    expect(document.querySelectorAll("img, b").length).toBe(0);
  });

  it("clears the reason and the invalid mark for the next try", () => {
    view.name.value = "h0st";
    showJoinError(view, refusedName("is reserved"), never);
    clearFieldErrors(view);
    expect(view.nameError.hidden).toBe(true);
    expect(view.nameError.textContent).toBe("");
    expect(view.name.hasAttribute("aria-invalid")).toBe(false);
    expect(view.name.value).toBe("h0st");
  });

  it("puts other refusals where they belong", () => {
    showJoinError(view, new ApiError(429, "slow down", {}, 7), never);
    expect(view.profileError.textContent).toBe("too many attempts, try again in 7 s");
    showJoinError(view, new ApiError(422, "bad", { avatar: "must be one of: fox" }), never);
    expect(view.avatarError.textContent).toBe("must be one of: fox");
    expect(view.nameError.hidden).toBe(true);
    showJoinError(view, new Error("offline"), () => "cannot reach the server");
    expect(view.profileError.textContent).toBe("cannot reach the server");
  });
});
