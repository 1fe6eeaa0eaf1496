import { dirname, join } from 'node:path';

/** One file of the usage console: where it is served under `/console/`, and where it is read from. */
export interface ConsoleFile {
  /** Path under `/console/`, e.g. `index.html`. */
  readonly path: string;
  readonly contentType: string;
  /** Absolute path on disk. */
  readonly file: string;
}

/**
 * The usage console: a static page that calls the platform's API with the credential typed into it.
 * The local platform serves these files at `/console/`, and the UsageConsole construct deploys the
 * same files to S3 behind CloudFront. Chart.js comes from its npm package, as its authors ship it.
 */
export function consoleFiles(): ConsoleFile[] {
  return [
    { path: 'index.html', contentType: 'text/html; charset=utf-8', file: join(__dirname, 'index.html') },
    { path: 'console.js', contentType: 'text/javascript; charset=utf-8', file: join(__dirname, 'console.js') },
    { path: 'console.css', contentType: 'text/css; charset=utf-8', file: join(__dirname, 'console.css') },
    {
      path: 'vendor/chart.umd.min.js',
      contentType: 'text/javascript; charset=utf-8',
      file: join(dirname(require.resolve('chart.js')), 'chart.umd.min.js'),
    },
  ];
}
