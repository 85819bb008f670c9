// The account screens: settings while signed in (name, e-mail and its
// verification, password, where one is signed in, deleting the account) and
// "Forgot password?" while signed out.

const $ = (id) => document.getElementById(id);

/** Wires the settings panel; `onName` shows a new display name. */
export function setUpSettings(api, onName) {
  const status = (text) => { $('settings-status').textContent = text; $('settings-error').textContent = ''; };
  const failed = (err) => { $('settings-status').textContent = ''; $('settings-error').textContent = err.message; };
  const attempt = (work) => work().catch(failed);

  $('settings-button').addEventListener('click', () => {
    const panel = $('settings');
    panel.hidden = !panel.hidden;
    $('settings-button').setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden) attempt(() => load(api));
  });

  $('profile-form').addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(async () => {
      const account = await api.updateAccount({ display_name: $('settings-display').value.trim() });
      api.updateUser({ display_name: account.display_name });
      onName(account.display_name);
      status('Name saved.');
    });
  });

  $('email-form').addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(async () => {
      const account = await api.updateAccount({ email: $('settings-email').value.trim() });
      showEmail(account);
      status(`A code was mailed to ${account.email}.`);
    });
  });

  $('verify-form').addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(async () => {
      const account = await api.verifyEmail($('settings-code').value.trim());
      $('settings-code').value = '';
      showEmail(account);
      status('E-mail address verified.');
    });
  });

  $('password-form').addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(async () => {
      await api.changePassword($('settings-current').value, $('settings-new').value);
      $('settings-current').value = '';
      $('settings-new').value = '';
      await showSessions(api);
      status('Password changed; every other login was signed out.');
    });
  });

  $('logout-all-button').addEventListener('click', () => attempt(async () => {
    await api.logoutEverywhere();
    api.forget();
  }));

  $('delete-form').addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(async () => {
      try {
        await api.deleteAccount($('delete-password').value, $('delete-erase').checked);
      } catch (err) {
        if (err.code === 'last_owner') {
          // Each name between FSI and PDI: the message is shown as text,
          // and a right-to-left name must not reorder the rest of it.
          const names = (err.details?.rooms ?? []).map((room) => `\u2068${room.name}\u2069`).join(', ');
          throw new Error(`You are the only owner of ${names}. Hand ${err.details?.rooms?.length === 1 ? 'it' : 'them'} over to another member first.`);
        }
        throw err;
      }
      $('delete-password').value = '';
      api.forget();
    });
  });
}

/** Closes the panel (signing out). */
export function hideSettings() {
  $('settings').hidden = true;
  $('settings-button').setAttribute('aria-expanded', 'false');
  $('settings-status').textContent = '';
  $('settings-error').textContent = '';
}

async function load(api) {
  const account = await api.account();
  $('settings-display').value = account.display_name;
  showEmail(account);
  await showSessions(api);
}

function showEmail(account) {
  $('settings-email').value = account.email ?? '';
  $('email-status').textContent = !account.email ? '(none)' : account.email_verified ? '(verified)' : '(not verified)';
  $('verify-form').hidden = !account.email || account.email_verified;
}

async function showSessions(api) {
  const sessions = await api.sessions();
  $('session-list').replaceChildren(...sessions.map((session) => {
    const item = document.createElement('li');
    const label = document.createElement('span');
    const agent = session.user_agent ? session.user_agent.slice(0, 60) : 'unknown device';
    const device = document.createElement('bdi');
    device.textContent = session.current ? 'This browser' : agent;
    label.append(device, ` · since ${new Date(session.created_at).toLocaleString()}`);
    item.append(label);
    if (!session.current) {
      const revoke = document.createElement('button');
      revoke.type = 'button';
      revoke.className = 'link';
      revoke.textContent = 'Sign out';
      revoke.setAttribute('aria-label', `Sign out ${agent}`);
      revoke.addEventListener('click', () => {
        api.endSession(session.id).then(() => showSessions(api)).catch((err) => {
          $('settings-error').textContent = err.message;
        });
      });
      item.append(revoke);
    }
    return item;
  }));
}

/** Wires "Forgot password?" on the sign-in screen. */
export function setUpPasswordReset(api) {
  const show = (resetting) => {
    $('auth-form').hidden = resetting;
    $('reset-form').hidden = !resetting;
    $('reset-error').textContent = '';
    $('reset-status').textContent = '';
    if (resetting) {
      $('reset-login').value = $('auth-username').value.trim();
      $('reset-step2').hidden = true;
      $('reset-resend').hidden = true;
      $('reset-login').focus();
    }
  };
  const failed = (err) => { $('reset-error').textContent = err.message; };
  const sent = (text) => {
    $('reset-error').textContent = '';
    $('reset-status').textContent = text;
    $('reset-step2').hidden = false;
    $('reset-resend').hidden = false;
  };
  const login = () => $('reset-login').value.trim();

  $('forgot-button').addEventListener('click', () => show(true));
  $('reset-back').addEventListener('click', () => show(false));
  $('reset-send').addEventListener('click', () => {
    if (!login()) { failed(new Error('Enter your username or e-mail address.')); return; }
    api.requestReset(login())
      .then(() => sent('If the account has a verified e-mail address, a code is on its way.'))
      .catch(failed);
  });
  $('reset-resend').addEventListener('click', () => {
    api.resendReset(login()).then(() => sent('Sent again (at most once a minute).')).catch(failed);
  });
  $('reset-form').addEventListener('submit', (event) => {
    event.preventDefault();
    api.resetPassword(login(), $('reset-code').value.trim(), $('reset-password').value)
      .then(() => {
        $('reset-code').value = '';
        $('reset-password').value = '';
        show(false);
        $('auth-error').textContent = '';
        $('auth-status').textContent = 'Password changed. Log in with the new one.';
      })
      .catch(failed);
  });
}
