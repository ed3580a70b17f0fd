import nodemailer from 'nodemailer';

export interface Mail {
  to: string;
  subject: string;
  text: string;
  html?: string;
  /** Stable per logical mail, so a retried send is recognisable downstream. */
  messageId?: string;
  /** Display name for the From header; the address stays the configured MAIL_FROM address. */
  fromName?: string;
  replyTo?: string;
}

export interface Mailer {
  send(mail: Mail): Promise<{ messageId: string }>;
  close(): void;
}

export function createMailer(smtpUrl: string, from: string): Mailer {
  // A pool of kept-open connections: a batch of invitations sends hundreds of mails in a row.
  const transport = nodemailer.createTransport({ url: smtpUrl, pool: true, maxConnections: 5, maxMessages: 500 } as Parameters<typeof nodemailer.createTransport>[0]);
  return {
    async send(mail) {
      const sender = mail.fromName ? { name: mail.fromName, address: /<([^>]+)>/.exec(from)?.[1]?.trim() ?? from.trim() } : from;
      const info = await transport.sendMail({ from: sender, replyTo: mail.replyTo, to: mail.to, subject: mail.subject, text: mail.text, html: mail.html, messageId: mail.messageId });
      return { messageId: info.messageId };
    },
    close: () => transport.close(),
  };
}
