export * from './atomicFile';
export * from './fileLock';
export * from './jsonlLog';
export * from './memoryState';
export * from './records';
export * from './vectorIndex';
export * from './preferenceMemory';
export * from './importExport';
