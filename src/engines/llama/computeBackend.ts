/**
 * Which compute backend llama.cpp runs on (cpu / vulkan / metal / cuda) and why.
 *
 * node-llama-cpp's `getLlama({ gpu: 'auto' })` tries, in order, the GPU builds whose system
 * libraries it finds (CUDA: the NVIDIA driver and CUDA runtime; Vulkan: the loader,
 * libvulkan.so.1 / vulkan-1.dll; Metal: any Apple-silicon Mac) and whose binary package is
 * installed, and quietly falls back to the CPU build when none loads (a GPU build "does not load"
 * when, e.g., the Vulkan loader is there but no driver or device is). It logs nothing about this
 * unless progress logs are on, so the reason is reconstructed here from its public
 * `getLlamaGpuTypes` and from which binary packages are installed.
 */
import { createRequire } from 'node:module';
import { getLlamaGpuTypes, type Llama, type LlamaGpuType, type LlamaModel } from 'node-llama-cpp';

export type BackendKind = 'cpu' | 'vulkan' | 'metal' | 'cuda';
type GpuKind = Exclude<BackendKind, 'cpu'>;

export interface ComputeBackend {
  /** What evaluates the model: a GPU backend only when at least one layer is offloaded to it. */
  readonly kind: BackendKind;
  /** The llama.cpp build that was loaded (a GPU build can still leave every layer on the CPU). */
  readonly build: BackendKind;
  /** One sentence: why this backend, and what would change it. */
  readonly reason: string;
  readonly gpuDevices: string[];
  readonly gpuLayers: number;
  readonly totalLayers: number;
}

/** What the backend explanation depends on, gathered from node-llama-cpp and the file system. */
export interface BackendFacts {
  /** 'auto' when a GPU was wanted, false when the engine was told to stay on the CPU. */
  readonly requested: 'auto' | false;
  readonly build: BackendKind;
  /** GPU kinds node-llama-cpp has builds for on this OS and architecture. */
  readonly candidates: ReadonlyArray<GpuKind>;
  /** GPU kinds whose system libraries (driver, loader) were found. */
  readonly driverFound: ReadonlyArray<GpuKind>;
  /** GPU kinds whose binary package is installed next to node-llama-cpp. */
  readonly installed: ReadonlyArray<GpuKind>;
  readonly gpuDevices: ReadonlyArray<string>;
  readonly gpuLayers: number;
  readonly totalLayers: number;
  /** Platform and architecture, e.g. 'linux-x64' (for the messages). */
  readonly platform: string;
}

const LABEL: Record<GpuKind, string> = { cuda: 'CUDA', vulkan: 'Vulkan', metal: 'Metal' };

const MISSING_DRIVER: Record<GpuKind, string> = {
  cuda: 'no NVIDIA driver with the CUDA runtime was found',
  vulkan: `no Vulkan loader (${process.platform === 'win32' ? 'vulkan-1.dll' : 'libvulkan.so.1'}) was found: install your GPU's Vulkan driver`,
  metal: 'Metal needs an Apple-silicon Mac',
};

/** node-llama-cpp's binary packages per platform and GPU kind (CUDA's `-ext` package is optional). */
const BINARY_PACKAGES: Record<string, Partial<Record<GpuKind, string>>> = {
  'linux-x64': { cuda: 'linux-x64-cuda', vulkan: 'linux-x64-vulkan' },
  'win32-x64': { cuda: 'win-x64-cuda', vulkan: 'win-x64-vulkan' },
  'darwin-arm64': { metal: 'mac-arm64-metal' },
};

/** Turns the facts into the backend and its reason (pure, so every branch is testable). */
export function explainBackend(f: BackendFacts): ComputeBackend {
  const base = { build: f.build, gpuDevices: [...f.gpuDevices], gpuLayers: f.gpuLayers, totalLayers: f.totalLayers };
  if (f.build !== 'cpu') {
    const devices = f.gpuDevices.length > 0 ? ` (${f.gpuDevices.join(', ')})` : '';
    if (f.gpuLayers > 0) {
      return { ...base, kind: f.build, reason: `${LABEL[f.build]}${devices}: ${f.gpuLayers} of ${f.totalLayers} layers on the GPU.` };
    }
    return { ...base, kind: 'cpu', reason: `The ${LABEL[f.build]} build loaded${devices}, but no layer fit in the GPU's free memory, so the CPU evaluates the model.` };
  }
  if (f.requested === false) return { ...base, kind: 'cpu', reason: 'The CPU was asked for (no GPU).' };
  if (f.candidates.length === 0) return { ...base, kind: 'cpu', reason: `node-llama-cpp has no GPU build for ${f.platform}.` };
  const why = f.candidates.map((gpu) => {
    if (!f.installed.includes(gpu)) return `the ${LABEL[gpu]} build is not installed with this extension`;
    if (!f.driverFound.includes(gpu)) return `${LABEL[gpu]}: ${MISSING_DRIVER[gpu]}`;
    return `the ${LABEL[gpu]} build did not load (no usable ${LABEL[gpu]} device or driver)`;
  });
  return { ...base, kind: 'cpu', reason: `CPU: ${why.join('; ')}.` };
}

function backendKind(gpu: LlamaGpuType): BackendKind {
  return gpu === false ? 'cpu' : gpu;
}

/** Whether node-llama-cpp's binary package for `gpu` on this platform resolves from here. */
function binaryInstalled(gpu: GpuKind, platform: string): boolean {
  const name = BINARY_PACKAGES[platform]?.[gpu];
  if (name === undefined) return false;
  try {
    createRequire(import.meta.url).resolve(`@node-llama-cpp/${name}`);
    return true;
  } catch {
    return false;
  }
}

/** The backend a loaded model runs on, with the reason. */
export async function describeBackend(llama: Llama, model: LlamaModel, requested: 'auto' | false): Promise<ComputeBackend> {
  const platform = `${process.platform}-${process.arch}`;
  const isGpu = (g: LlamaGpuType): g is GpuKind => g !== false;
  const [valid, supported, gpuDevices] = await Promise.all([
    getLlamaGpuTypes('allValid'),
    getLlamaGpuTypes('supported'),
    llama.gpu === false ? Promise.resolve([]) : llama.getGpuDeviceNames(),
  ]);
  const candidates = valid.filter(isGpu);
  return explainBackend({
    requested,
    build: backendKind(llama.gpu),
    candidates,
    driverFound: supported.filter(isGpu),
    installed: candidates.filter((g) => binaryInstalled(g, platform)),
    gpuDevices,
    gpuLayers: model.gpuLayers,
    totalLayers: model.fileInsights.totalLayers,
    platform,
  });
}
